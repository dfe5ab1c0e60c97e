"""Recorded traffic replayed as a camera: a folder of images, one image, or a video file.

Images are decoded by Pillow, videos by OpenCV (imported only when a video is replayed). Every file is
hostile input: its size on disk and its pixel count (read from the header, before decoding) are
bounded, and a file that is not an image, is truncated, too big or has an unusable pixel layout is
skipped with a clear error naming the file and what was wrong, counted, and logged at a bounded rate.
Frames are handed on at ``fps``, in file-name order; ``loop`` starts again at the end.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers.camera.base import MAX_PIXELS, CameraError, Frame, LogLimiter
from drivers.errors import EdgeAgentError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".pnm", ".tif", ".tiff", ".webp"}
)
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mjpeg", ".mjpg", ".ts"})
MAX_FILE_BYTES = 64 * 1024 * 1024
"""The largest image file read (a 16 MP PNG fits comfortably)."""


class ImageError(EdgeAgentError, ValueError):
    """A file cannot be used as an image; the message names the file and what was wrong."""


def read_image(
    path: Path, *, max_bytes: int = MAX_FILE_BYTES, max_pixels: int = MAX_PIXELS
) -> npt.NDArray[np.uint8]:
    """Decode ``path`` into an (h, w, 3) uint8 B, G, R array, or raise :class:`ImageError`.

    Grey, palette, 16-bit and alpha images are converted; the size on disk is checked before the file
    is opened and the pixel count before it is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not path.is_file():
        raise ImageError(f"{path}: not a file")
    if size > max_bytes:
        raise ImageError(f"{path}: {size} bytes is over the limit of {max_bytes} bytes")
    if size == 0:
        raise ImageError(f"{path}: empty file")
    try:
        with Image.open(path) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(f"{path}: {w}x{h} pixels is over the limit of {max_pixels} pixels")
            if w < 16 or h < 16:
                raise ImageError(f"{path}: {w}x{h} pixels is too small (at least 16x16)")
            img.load()
            rgb = np.asarray(img.convert("RGB"))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (unknown or unsupported format)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: refused as a decompression bomb ({exc})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"{path}: damaged or truncated image ({exc})") from None
    bgr: npt.NDArray[np.uint8] = np.ascontiguousarray(rgb[:, :, ::-1])
    return bgr


def list_images(folder: Path) -> list[Path]:
    """The image files of ``folder`` (by suffix), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class FileSource:
    """Replays a folder of images, one image file, or a video file at ``fps`` (implements ``FrameSource``)."""

    def __init__(
        self,
        camera: str,
        *,
        clock: Callable[[], float],
        path: Path | str,
        fps: float = 5.0,
        loop: bool = False,
        max_bytes: int = MAX_FILE_BYTES,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.camera = camera
        self.path = Path(path)
        self._clock = clock
        self._fps = fps
        self._period = 1.0 / fps
        self._loop = loop
        self._max_bytes = max_bytes
        self._max_pixels = max_pixels
        self.counters: Counter[str] = Counter()
        self._warn = LogLimiter(log)
        self._video: Any = None
        self._closed = False
        suffix = self.path.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            from drivers.camera.opencv import OpencvSource

            self._video = OpencvSource(
                camera, clock=clock, device=str(self.path), fps=fps, max_pixels=max_pixels, loop=loop
            )
            self.counters = self._video.counters

    def _files(self) -> list[Path]:
        if self.path.is_dir():
            files = list_images(self.path)
            if not files:
                raise CameraError(f"camera {self.camera!r}: no image files in {self.path}")
            return files
        if self.path.is_file():
            return [self.path]
        raise CameraError(f"camera {self.camera!r}: {self.path} does not exist")

    async def frames(self) -> AsyncIterator[Frame]:
        """Yield one frame per good file (or video frame) every ``1 / fps`` seconds."""
        if self._video is not None:
            async for frame in self._video.frames():
                yield frame
            return
        loop = asyncio.get_running_loop()
        files = self._files()
        while not self._closed:
            for path in files:
                if self._closed:
                    return
                try:
                    image = await loop.run_in_executor(None, self._decode, path)
                except ImageError as exc:
                    self.counters["bad_files"] += 1
                    self._warn.warning("bad_file", "camera %r: skipped %s", self.camera, exc)
                    continue
                yield Frame(self.camera, self._clock(), image)
                await asyncio.sleep(self._period)
            if not self._loop:
                return
            self.counters["replays"] += 1

    def _decode(self, path: Path) -> npt.NDArray[np.uint8]:
        return read_image(path, max_bytes=self._max_bytes, max_pixels=self._max_pixels)

    def close(self) -> None:
        """Stop replaying (safe to call twice)."""
        self._closed = True
        if self._video is not None:
            self._video.close()
