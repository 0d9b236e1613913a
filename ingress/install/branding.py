"""Branding of the install pages: the App's name, logo, colours and custom CSS, checked once (at
`App(...)`) and turned into each page's stylesheet and Content-Security-Policy.

No web imports here: `App.__init__` calls `check_branding` in every process, workers included.
"""

from __future__ import annotations

import base64
import colorsys
import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit

from shared.errors import ConfigurationError

DEFAULT_PRIMARY = "#6366f1"
DEFAULT_ACCENT = "#8b5cf6"
"""v0.0.10's defaults."""
MAX_CUSTOM_CSS = 20_000
MAX_LOGO_URL = 2048

_HEX = re.compile(r"#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
_FUNCTION = re.compile(r"(rgba?|hsla?)\(([^()]*)\)", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(%|deg)?")
_LOGO_FORBIDDEN = re.compile(r"[\s;,'\"<>\\`]")
"""Characters that could end a CSP source expression or an HTML attribute; refused rather than encoded."""


def parse_color(value: str) -> tuple[float, float, float]:
    """The sRGB channels (0-1) of a CSS colour in hex (`#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`) or
    functional notation (`rgb()`, `rgba()`, `hsl()`, `hsla()`); ValueError for anything else (named
    colours included: the pages need the channels to pick readable text on it)."""
    text = value.strip()
    if _HEX.fullmatch(text):
        digits = text[1:]
        if len(digits) in (3, 4):
            digits = "".join(c * 2 for c in digits)
        return tuple(int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]
    match = _FUNCTION.fullmatch(text)
    if match is None:
        raise ValueError(value)
    kind = match.group(1).lower()
    parts = match.group(2).replace(",", " ").replace("/", " ").split()
    if len(parts) not in (3, 4) or not all(_NUMBER.fullmatch(p) for p in parts):
        raise ValueError(value)
    if kind.startswith("rgb"):
        if any(p.endswith("deg") for p in parts):
            raise ValueError(value)
        channels = [float(p[:-1]) / 100 if p.endswith("%") else float(p) / 255 for p in parts[:3]]
    else:
        hue, sat, light = parts[:3]
        if not (sat.endswith("%") and light.endswith("%")) or hue.endswith("%"):
            raise ValueError(value)
        h = float(hue.removesuffix("deg")) % 360 / 360
        channels = list(colorsys.hls_to_rgb(h, float(light[:-1]) / 100, float(sat[:-1]) / 100))
    if len(parts) == 4:
        alpha = float(parts[3][:-1]) / 100 if parts[3].endswith("%") else float(parts[3])
        if not 0 <= alpha <= 1 or parts[3].endswith("deg"):
            raise ValueError(value)
    if not all(0 <= c <= 1 for c in channels):
        raise ValueError(value)
    return channels[0], channels[1], channels[2]


def _luminance(rgb: tuple[float, float, float]) -> float:
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """WCAG 2 contrast ratio (1-21)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


_WHITE, _INK = (1.0, 1.0, 1.0), (17 / 255, 24 / 255, 39 / 255)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


def text_on(color: str) -> str:
    """White or near-black, whichever reads better on `color`."""
    rgb = parse_color(color)
    return "#ffffff" if contrast(rgb, _WHITE) >= contrast(rgb, _INK) else _hex(_INK)


def ink_of(color: str) -> str:
    """`color` darkened until it reads on white (4.5:1), for links and outlines in the page body."""
    rgb = parse_color(color)
    for _ in range(40):
        if contrast(rgb, _WHITE) >= 4.5:
            break
        rgb = (rgb[0] * 0.9, rgb[1] * 0.9, rgb[2] * 0.9)
    return _hex(rgb)


def safe_css(css: str) -> str:
    """`custom_css` as it goes inside `<style>`: no `<` (so no `</style`), written as the CSS escape
    `\\3c ` which means the same character inside CSS strings; newlines as the HTML parser will
    see them (the CSP hash is over the parsed text); NUL dropped."""
    return css.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n").replace("<", "\\3c ")


def check_branding(
    *,
    primary_color: str | None = None,
    accent_color: str | None = None,
    custom_css: str | None = None,
    logo_url: str | None = None,
) -> None:
    """Raise ConfigurationError naming the first branding value the install pages cannot use."""
    for name, color in (("primary_color", primary_color), ("accent_color", accent_color)):
        if color is None:
            continue
        try:
            parse_color(str(color))
        except ValueError:
            raise ConfigurationError(
                f"App({name}={color!r}): not a CSS colour the install pages accept; use hex (#6366f1) or rgb()/hsl()"
            ) from None
    if custom_css is not None and len(custom_css) > MAX_CUSTOM_CSS:
        raise ConfigurationError(f"App(custom_css=...): longer than {MAX_CUSTOM_CSS} characters")
    if logo_url is not None:
        parts = urlsplit(logo_url)
        if (
            parts.scheme != "https"
            or not parts.hostname
            or len(logo_url) > MAX_LOGO_URL
            or _LOGO_FORBIDDEN.search(logo_url)
        ):
            raise ConfigurationError(
                f"App(logo_url={logo_url[:100]!r}): must be an https:// URL without spaces, quotes or ';' ','"
            )


@dataclass(frozen=True)
class Branding:
    """What every install page shows of the integration, validated (see `check_branding`)."""

    name: str
    description: str = ""
    logo_url: str | None = None
    primary_color: str = DEFAULT_PRIMARY
    accent_color: str = DEFAULT_ACCENT
    custom_css: str = ""
    show_powered_by: bool = True

    def __post_init__(self) -> None:
        check_branding(
            primary_color=self.primary_color,
            accent_color=self.accent_color,
            custom_css=self.custom_css,
            logo_url=self.logo_url,
        )

    @cached_property
    def stylesheet(self) -> str:
        """The whole text of the page's one `<style>` element."""
        primary, accent = self.primary_color.strip(), self.accent_color.strip()
        variables = (
            f":root{{--fk-primary:{primary};--fk-on-primary:{text_on(primary)};--fk-link:{ink_of(primary)};"
            f"--fk-accent:{accent};--fk-on-accent:{text_on(accent)};--fk-focus:{ink_of(accent)}}}"
        )
        return variables + BASE_CSS + safe_css(self.custom_css)

    @cached_property
    def content_security_policy(self) -> str:
        """No script at all; this page's own stylesheet only (by hash, so neither an injected
        `<style>` nor `@import` applies); images only from the exact logo URL."""
        digest = base64.b64encode(hashlib.sha256(self.stylesheet.encode("utf-8")).digest()).decode("ascii")
        images = self.logo_url if self.logo_url else "'none'"
        return (
            f"default-src 'none'; style-src 'sha256-{digest}'; img-src {images}; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        )


BASE_CSS = """
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:#1f2328;background:#f4f5f7;overflow-wrap:anywhere}
a{color:var(--fk-link)}
:focus-visible{outline:3px solid var(--fk-focus);outline-offset:2px}
.wrap{max-width:46rem;margin:0 auto;padding:0 1rem}
.top{background:var(--fk-primary);color:var(--fk-on-primary);border-top:5px solid var(--fk-accent)}
.top .wrap{display:flex;flex-wrap:wrap;gap:.75rem 1.5rem;align-items:center;justify-content:space-between;
padding-top:1rem;padding-bottom:1rem}
.brand{display:flex;gap:.75rem;align-items:center;min-width:0}
.brand img{height:44px;width:auto;max-width:132px;border-radius:8px;background:#fff;object-fit:contain}
.app-name{margin:0;font-size:1.3rem;font-weight:700;line-height:1.25}
.app-desc{margin:.1rem 0 0;font-size:.92rem;opacity:.92}
.who{display:flex;flex-wrap:wrap;gap:.35rem .75rem;align-items:center;font-size:.9rem}
.who form{margin:0}
.who-email{display:block;font-size:.82rem;opacity:.9}
.who button{background:transparent;color:inherit;border:1px solid currentColor;border-radius:6px;
padding:.3rem .8rem;font:inherit;cursor:pointer}
main.wrap{padding-top:1.25rem;padding-bottom:1.5rem}
.context{display:flex;flex-wrap:wrap;gap:.35rem 1.75rem;margin:0 0 1rem;padding:.65rem .9rem;background:#fff;
border:1px solid #d8dee4;border-left:4px solid var(--fk-accent);border-radius:8px;font-size:.92rem}
.context div{display:flex;gap:.45rem;align-items:baseline;min-width:0}
.context dt{color:#59636e}
.context dd{margin:0;font-weight:600}
.context .none{font-weight:400;color:#59636e;font-style:italic}
.back{margin:0 0 .5rem;font-size:.92rem}
.back a{text-decoration:none}
.back a:hover{text-decoration:underline}
h1{font-size:1.55rem;line-height:1.25;margin:.25rem 0 .75rem}
h2{font-size:1.1rem;margin:0 0 .5rem}
h3{font-size:1rem;margin:1.25rem 0 0}
.card{background:#fff;border:1px solid #d8dee4;border-radius:10px;padding:1rem 1.25rem;margin:1rem 0}
.card > :last-child{margin-bottom:0}
.lead{margin:.25rem 0 1rem;color:#3d444d}
.muted{color:#59636e;font-size:.92rem}
ul.plain{margin:.25rem 0 .5rem;padding-left:1.25rem}
ul.plain li{margin:.2rem 0}
ul.pick{list-style:none;margin:0;padding:0;background:#fff;border:1px solid #d8dee4;border-radius:10px;overflow:hidden}
ul.pick li{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem;padding:.8rem 1rem;border-top:1px solid #eaeef2}
ul.pick li:first-child{border-top:0}
ul.pick a{flex:1 1 12rem;font-weight:600;text-decoration:none}
ul.pick a:hover{text-decoration:underline}
ul.pick .empty{color:#59636e}
.badge{display:inline-block;padding:.05rem .55rem;border-radius:999px;font-size:.78rem;font-weight:600;
background:#eaeef2;color:#3d444d}
.badge.on{background:var(--fk-accent);color:var(--fk-on-accent)}
label{display:block;font-weight:600;margin:1rem 0 .3rem}
label small{font-weight:400;color:#59636e}
input[type=text],input[type=password],select,textarea{display:block;width:100%;max-width:100%;margin:0;
padding:.55rem .7rem;border:1px solid #8c959f;border-radius:6px;background:#fff;color:inherit;font:inherit}
textarea{min-height:6rem;resize:vertical}
[aria-invalid=true]{border-color:#cf222e;box-shadow:0 0 0 1px #cf222e}
.hint{display:block;margin-top:.3rem;color:#59636e;font-size:.875rem}
.field-error{display:block;margin-top:.3rem;color:#b3141f;font-size:.875rem;font-weight:600}
label.check{display:flex;gap:.6rem;align-items:flex-start;font-weight:400;margin:0}
label.check input{margin-top:.3rem;flex:none;width:1.1rem;height:1.1rem}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;margin:1.25rem 0 0}
.btn{display:inline-block;background:var(--fk-primary);color:var(--fk-on-primary);border:1px solid transparent;
border-radius:6px;padding:.6rem 1.15rem;font:inherit;font-weight:600;line-height:1.3;text-decoration:none;
text-align:center;cursor:pointer}
.btn:hover{filter:brightness(.93)}
.btn.secondary{background:#fff;color:#1f2328;border-color:#d0d7de}
.btn.danger{background:#cf222e;color:#fff}
.btn.danger-outline{background:#fff;color:#b3141f;border-color:#cf222e}
.notice{border:1px solid;border-radius:8px;padding:.7rem 1rem;margin:0 0 1rem}
.notice p{margin:0}
.notice.ok{background:#dafbe1;border-color:#1a7f37;color:#0f4d22}
.notice.error{background:#ffebe9;border-color:#cf222e;color:#82071e}
.notice ul{margin:.4rem 0 0;padding-left:1.25rem}
.danger-zone{border-color:#f0b4b4}
footer{padding:0 1rem 2rem;text-align:center;font-size:.8rem;color:#59636e}
@media (max-width:30rem){.app-name{font-size:1.15rem}h1{font-size:1.35rem}.card{padding:.9rem 1rem}
.actions .btn{flex:1 1 auto}}
"""
