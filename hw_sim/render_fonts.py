"""The fonts the plate renderer paints with, split into the ones training sees and the held-out ones.

A font is named by where it comes from: a Debian font package's file under ``/usr/share/fonts``, or a
PyPI ``fontpkg-*`` package's file (its ``files/`` folder), optionally with a weight for a variable font.
Whatever is not installed is skipped, so rendering never fails for lack of a font (PIL's built-in font
is the last resort).

:data:`REGISTRATION_HELD_OUT` are registration faces training never sees: validation and the tests
render with them, so their accuracy predicts how the reader does on a plate face it has never met.
``.ci/run`` installs the Debian packages and the ``train`` extra the PyPI ones.
"""

from __future__ import annotations

import contextlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

DEBIAN_DIRS: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype"),
    Path("/usr/share/fonts/opentype"),
    Path("/usr/local/share/fonts"),
)


@dataclass(frozen=True)
class FontSpec:
    """One face: ``source`` is ``debian`` (``path`` under a Debian font dir) or a ``fontpkg_*`` module."""

    source: str
    path: str
    weight: int | None = None  # for a variable font: the ``wght`` axis value


def _d(path: str) -> FontSpec:
    return FontSpec("debian", path)


def _p(module: str, path: str, weight: int | None = None) -> FontSpec:
    return FontSpec(module, path, weight)


REGISTRATION_TRAIN: tuple[FontSpec, ...] = (
    _d("liberation2/LiberationSans-Bold.ttf"),
    _d("liberation/LiberationSansNarrow-Bold.ttf"),
    _d("urw-base35/NimbusSansNarrow-Bold.otf"),
    _d("urw-base35/NimbusSansNarrow-Regular.otf"),
    _d("urw-base35/NimbusSans-Bold.otf"),
    _d("roboto/unhinted/RobotoCondensed-Bold.ttf"),
    _d("roboto/unhinted/RobotoCondensed-Medium.ttf"),
    _d("bebas-neue/BebasNeue-Bold.otf"),
    _d("yanone-kaffeesatz/YanoneKaffeesatz-Bold.otf"),
    _d("opendin/OSP-DIN.ttf"),
    _d("croscore/Arimo-Bold.ttf"),
    _d("open-sans/OpenSans-CondBold.ttf"),
    _d("ocr-b/OCRB.otf"),
    _d("dejavu/DejaVuSans-Bold.ttf"),
    _d("dejavu/DejaVuSansMono-Bold.ttf"),
    _d("urw-base35/URWGothic-Demi.otf"),
    _p("fontpkg_oswald", "Oswald[wght].ttf", 500),
    _p("fontpkg_oswald", "Oswald[wght].ttf", 700),
    _p("fontpkg_overpass", "Overpass[wght].ttf", 700),
    _p("fontpkg_saira_condensed", "SairaCondensed-Bold.ttf"),
    _p("fontpkg_fira_sans_condensed", "FiraSansCondensed-Bold.ttf"),
    _p("fontpkg_pt_sans_narrow", "PT_Sans-Narrow-Web-Bold.ttf"),
    _p("fontpkg_archivo_narrow", "ArchivoNarrow[wght].ttf", 700),
    _p("fontpkg_teko", "Teko[wght].ttf", 600),
    _p("fontpkg_league_spartan", "LeagueSpartan[wght].ttf", 700),
    _p("fontpkg_ibm_plex_sans_condensed", "IBMPlexSansCondensed-Bold.ttf"),
    _p("fontpkg_anton", "Anton-Regular.ttf"),
    _p("fontpkg_alumni_sans", "AlumniSans[wght].ttf", 800),
    _p("fontpkg_roboto_condensed", "RobotoCondensed[wght].ttf", 800),
)
"""Registration faces training renders with: condensed plate-like sans faces in several weights."""

REGISTRATION_HELD_OUT: tuple[FontSpec, ...] = (
    _d("dejavu/DejaVuSansCondensed-Bold.ttf"),
    _d("routed-gothic/routed-gothic-narrow.ttf"),
    _p("fontpkg_fjalla_one", "FjallaOne-Regular.ttf"),
    _p("fontpkg_barlow_condensed", "BarlowCondensed-SemiBold.ttf"),
)
"""Registration faces only validation and the tests render with (never seen in training)."""

LEGEND: tuple[FontSpec, ...] = (
    _d("dejavu/DejaVuSerif-Bold.ttf"),
    _d("dejavu/DejaVuSans.ttf"),
    _d("liberation2/LiberationSerif-BoldItalic.ttf"),
    _d("liberation2/LiberationSans-Italic.ttf"),
    _d("urw-base35/Z003-MediumItalic.otf"),
    _d("urw-base35/C059-BdIta.otf"),
    _d("urw-base35/URWBookman-Demi.otf"),
    _d("urw-base35/P052-Bold.otf"),
    _d("croscore/Tinos-Bold.ttf"),
    _d("open-sans/OpenSans-Bold.ttf"),
    _d("bebas-neue/BebasNeue-Regular.otf"),
    _p("fontpkg_overpass", "Overpass-Italic[wght].ttf", 600),
    _p("fontpkg_oswald", "Oswald[wght].ttf", 400),
)
"""Faces for state and province names, slogans, stickers and frame text (script, serif, sans)."""


@cache
def resolve(spec: FontSpec) -> Path | None:
    """The file of ``spec`` when installed, else ``None``."""
    if spec.source == "debian":
        for d in DEBIAN_DIRS:
            p = d / spec.path
            if p.is_file():
                return p
        return None
    found = importlib.util.find_spec(spec.source)
    if found is None or not found.submodule_search_locations:
        return None
    p = Path(next(iter(found.submodule_search_locations))) / "files" / spec.path
    return p if p.is_file() else None


def installed(specs: tuple[FontSpec, ...]) -> tuple[FontSpec, ...]:
    """The faces of ``specs`` that are installed here (may be empty)."""
    return tuple(s for s in specs if resolve(s) is not None)


@cache
def load(spec: FontSpec | None, size: int) -> Font:
    """``spec`` at ``size`` pixels; a missing face (or ``None``) gives PIL's built-in font."""
    path = resolve(spec) if spec is not None else None
    if spec is not None and path is not None:
        try:
            font = ImageFont.truetype(str(path), size)
        except OSError:
            return ImageFont.load_default(size)
        if spec.weight is not None:
            with contextlib.suppress(OSError, ValueError):  # no variation support: the default instance
                font.set_variation_by_axes([spec.weight])
        return font
    return ImageFont.load_default(size)


CONTAINER_TRAIN: tuple[FontSpec, ...] = (
    _d("opendin/OSP-DIN.ttf"),
    _d("dejavu/DejaVuSans-Bold.ttf"),
    _d("dejavu/DejaVuSansMono-Bold.ttf"),
    _d("liberation2/LiberationSans-Bold.ttf"),
    _d("liberation/LiberationSansNarrow-Bold.ttf"),
    _d("urw-base35/NimbusSansNarrow-Bold.otf"),
    _d("urw-base35/NimbusSans-Bold.otf"),
    _d("roboto/unhinted/RobotoCondensed-Bold.ttf"),
    _d("ocr-b/OCRB.otf"),
    _d("bebas-neue/BebasNeue-Bold.otf"),
    _d("croscore/Arimo-Bold.ttf"),
    _d("open-sans/OpenSans-CondBold.ttf"),
    _p("fontpkg_oswald", "Oswald[wght].ttf", 600),
    _p("fontpkg_barlow_semi_condensed", "BarlowSemiCondensed-Bold.ttf"),
    _p("fontpkg_fira_sans_condensed", "FiraSansCondensed-Bold.ttf"),
    _p("fontpkg_saira_condensed", "SairaCondensed-Bold.ttf"),
    _p("fontpkg_ibm_plex_sans_condensed", "IBMPlexSansCondensed-Bold.ttf"),
    _p("fontpkg_pt_sans_narrow", "PT_Sans-Narrow-Web-Bold.ttf"),
    _p("fontpkg_black_ops_one", "BlackOpsOne-Regular.ttf"),
    _p("fontpkg_russo_one", "RussoOne-Regular.ttf"),
    _p("fontpkg_rajdhani", "Rajdhani-Bold.ttf"),
    _p("fontpkg_share_tech", "ShareTech-Regular.ttf"),
    _p("fontpkg_chakra_petch", "ChakraPetch-Bold.ttf"),
)
"""Container-code faces training renders with: DIN-like, condensed, stencil-like and OCR faces."""

CONTAINER_HELD_OUT: tuple[FontSpec, ...] = (
    _d("dejavu/DejaVuSansCondensed-Bold.ttf"),
    _d("routed-gothic/routed-gothic-narrow.ttf"),
    _p("fontpkg_fjalla_one", "FjallaOne-Regular.ttf"),
    _p("fontpkg_barlow_condensed", "BarlowCondensed-SemiBold.ttf"),
    _p("fontpkg_exo_2", "Exo2[wght].ttf", 700),
)
"""Container-code faces only validation and the tests render with (never seen in training)."""
