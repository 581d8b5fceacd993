"""Offline pictures for the image team: a twilight city drawn from the words of a prompt.

The scripted image server of :func:`~assistant_graph.examples.offline_image_team` answers
each ``create_image`` with :func:`draw_city`, so the three versions of notebook 04 differ
the way the critiques say: a busy purple-and-blue skyline with many lights and craft
(nothing leads the eye), then one radiant central spire over calm water, then the spire
with flying trams and people on the waterfront for scale, under a star-lit sky when the
prompt asks for one. Written with the standard library only (zlib, struct).
"""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass

__all__ = ["HEIGHT", "WIDTH", "draw_city", "scene_of"]

WIDTH, HEIGHT = 192, 128
"""Size of every picture, in pixels."""
HORIZON = 78
"""The row where the city stands on the water."""

RGB = tuple[int, int, int]
SKY_TOP: RGB = (38, 18, 74)
SKY_HORIZON: RGB = (120, 70, 170)
CALM_SKY_HORIZON: RGB = (70, 50, 130)
WATER: RGB = (20, 30, 80)
BUILDING: RGB = (30, 24, 60)
WINDOW: RGB = (255, 214, 120)
SPIRE: RGB = (170, 220, 255)
GLOW: RGB = (120, 150, 230)
CRAFT: RGB = (255, 120, 200)
TRAM: RGB = (255, 240, 160)
STAR: RGB = (255, 255, 240)
PERSON: RGB = (250, 180, 130)
QUAY: RGB = (60, 50, 90)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Scene:
    """What a prompt asks to be drawn."""

    spire: bool
    """One radiant central spire as the focal point."""
    trams: bool
    """Flying trams around the spire."""
    people: bool
    """People on the waterfront, for scale."""
    stars: bool
    """A calmer, star-lit sky."""
    busy: bool
    """Many buildings, lights and craft, with nothing to lead the eye."""


def scene_of(prompt: str) -> Scene:
    """The scene a prompt describes, from its words."""
    text = prompt.lower()
    spire = "spire" in text
    return Scene(
        spire=spire,
        trams="tram" in text,
        people="people" in text,
        stars="star" in text,
        busy=not spire,
    )


def draw_city(prompt: str) -> bytes:
    """A PNG picture of the twilight city ``prompt`` describes."""
    scene = scene_of(prompt)
    pixels = _sky(scene)
    dice = random.Random(zlib.crc32(prompt.encode("utf-8")))
    if scene.stars:
        _stars(pixels, dice)
    _skyline(pixels, scene, dice)
    if scene.spire:
        _spire(pixels)
    if scene.trams:
        _trams(pixels)
    if scene.busy:
        _craft(pixels, dice, count=40)
    elif not scene.stars:
        _craft(pixels, dice, count=3)
    _reflect(pixels)
    if scene.people:
        _waterfront(pixels, dice)
    return _png(pixels)


def _sky(scene: Scene) -> list[list[RGB]]:
    horizon = CALM_SKY_HORIZON if scene.stars else SKY_HORIZON
    rows = []
    for y in range(HEIGHT):
        share = min(y / HORIZON, 1.0)
        rows.append([_mix(SKY_TOP, horizon, share)] * WIDTH)
    return [list(row) for row in rows]


def _stars(pixels: list[list[RGB]], dice: random.Random) -> None:
    for _ in range(60):
        _dot(pixels, dice.randrange(WIDTH), dice.randrange(HORIZON - 25), STAR)


def _skyline(pixels: list[list[RGB]], scene: Scene, dice: random.Random) -> None:
    """Buildings standing on the horizon: many and lit up, or a few low ones."""
    x = 0
    while x < WIDTH:
        width = dice.randint(6, 12) if scene.busy else dice.randint(10, 18)
        height = dice.randint(12, 46) if scene.busy else dice.randint(6, 16)
        _box(pixels, x, HORIZON - height, width - 1, height, BUILDING)
        lights = 0.45 if scene.busy else 0.1
        for wy in range(HORIZON - height + 2, HORIZON - 1, 3):
            for wx in range(x + 1, x + width - 2, 2):
                if dice.random() < lights:
                    _dot(pixels, wx, wy, WINDOW)
        x += width


def _spire(pixels: list[list[RGB]]) -> None:
    """A tall radiant spire in the middle, with a soft glow around it."""
    centre, top = WIDTH // 2, 14
    for y in range(top, HORIZON):
        half = 1 + (y - top) // 16
        for x in range(centre - half - 4, centre + half + 5):
            _blend(pixels, x, y, GLOW, 0.35)
        _box(pixels, centre - half, y, 2 * half + 1, 1, SPIRE)


def _trams(pixels: list[list[RGB]]) -> None:
    """Flying trams on two lines around the spire."""
    for row, start in ((34, 40), (48, 110)):
        for index in range(4):
            _box(pixels, start + index * 12, row, 6, 2, TRAM)


def _craft(pixels: list[list[RGB]], dice: random.Random, count: int) -> None:
    for _ in range(count):
        x, y = dice.randrange(WIDTH - 2), dice.randrange(8, HORIZON - 20)
        _box(pixels, x, y, 2, 1, CRAFT)


def _reflect(pixels: list[list[RGB]]) -> None:
    """The water: the city mirrored under the horizon, darker and rippled."""
    for y in range(HORIZON, HEIGHT):
        source = pixels[max(2 * HORIZON - y - 1, 0)]
        shift = (y // 3) % 3 - 1
        pixels[y] = [
            _mix(
                source[(x + shift) % WIDTH], WATER, 0.55 + 0.3 * (y - HORIZON) / (HEIGHT - HORIZON)
            )
            for x in range(WIDTH)
        ]


def _waterfront(pixels: list[list[RGB]], dice: random.Random) -> None:
    """A quay along the water with small figures on it."""
    _box(pixels, 0, HORIZON, WIDTH, 3, QUAY)
    for x in range(6, WIDTH - 6, 11):
        offset = dice.randint(-3, 3)
        _box(pixels, x + offset, HORIZON - 5, 2, 5, PERSON)


def _box(pixels: list[list[RGB]], x: int, y: int, width: int, height: int, colour: RGB) -> None:
    for row in range(max(y, 0), min(y + height, HEIGHT)):
        for column in range(max(x, 0), min(x + width, WIDTH)):
            pixels[row][column] = colour


def _dot(pixels: list[list[RGB]], x: int, y: int, colour: RGB) -> None:
    _box(pixels, x, y, 1, 1, colour)


def _blend(pixels: list[list[RGB]], x: int, y: int, colour: RGB, share: float) -> None:
    if 0 <= x < WIDTH and 0 <= y < HEIGHT:
        pixels[y][x] = _mix(pixels[y][x], colour, share)


def _mix(first: RGB, second: RGB, share: float) -> RGB:
    r, g, b = (round(a + (c - a) * share) for a, c in zip(first, second, strict=True))
    return (r, g, b)


def _png(pixels: list[list[RGB]]) -> bytes:
    """The pixels as an 8-bit RGB PNG."""
    raw = b"".join(b"\x00" + bytes(channel for pixel in row for channel in pixel) for row in pixels)
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    checksum = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)
