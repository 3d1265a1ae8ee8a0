"""Procedural category shapes with per-model random proportions.

Every builder takes a ``numpy.random.Generator`` and returns ``(vertices (V, 3) float64,
faces (F, 3) int64, face_colors (F, 3) float64)`` in the **y-up ShapeNet v1 frame** with the
object's front towards **-z** (which :func:`lmnet.camera.lmnet_from_v1` turns into +z, the way
3D-LMNet chairs face). Sizes are in arbitrary units; the generator normalises them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from lmnet.synthetic.primitives import PartList, box, cylinder, ellipsoid, frustum, hexahedron


def _grey(rng: np.random.Generator, lo: float = 0.55, hi: float = 0.85) -> np.ndarray:
    """A light grey with a faint random tint."""
    return np.clip(rng.uniform(lo, hi) + rng.uniform(-0.04, 0.04, size=3), 0.0, 1.0)


def _leg(parts: PartList, rng_round: bool, x: float, z: float, y0: float, y1: float,
         thick: float, color, splay=(0.0, 0.0)) -> None:
    """A vertical (optionally splayed) leg from ``y0`` (floor) to ``y1`` at ``(x, z)``."""
    bottom = np.array([x + splay[0], y0, z + splay[1]])
    top = np.array([x, y1, z])
    if rng_round:
        parts.add(cylinder(bottom, top, thick / 2, segments=12), color)
    else:
        h = thick / 2
        bits = np.array([[(i >> a) & 1 for a in range(3)] for i in range(8)], dtype=np.float64)
        corners = np.where(bits[:, 1:2] > 0, top, bottom) + np.stack(
            [(bits[:, 0] - 0.5) * 2 * h, np.zeros(8), (bits[:, 2] - 0.5) * 2 * h], 1)
        parts.add(hexahedron(corners), color)


def chair(rng: np.random.Generator):
    parts = PartList()
    color = _grey(rng)
    w, d = rng.uniform(0.42, 0.62), rng.uniform(0.40, 0.58)
    seat_y, seat_t = rng.uniform(0.38, 0.50), rng.uniform(0.035, 0.08)
    leg_t = rng.uniform(0.03, 0.06)
    parts.add(box([0, seat_y + seat_t / 2, 0], [w, seat_t, d]), color)
    # back: slanted slab (or posts + rails) rising from the rear edge
    back_h, back_t = rng.uniform(0.32, 0.62), rng.uniform(0.03, 0.06)
    tilt = rng.uniform(0.0, 0.12)
    y0, y1 = seat_y + seat_t, seat_y + seat_t + back_h
    z0 = d / 2 - back_t
    if rng.random() < 0.7:
        bits = np.array([[(i >> a) & 1 for a in range(3)] for i in range(8)], dtype=np.float64)
        corners = np.stack([(bits[:, 0] - 0.5) * w,
                            np.where(bits[:, 1] > 0, y1, y0),
                            z0 + bits[:, 2] * back_t + bits[:, 1] * tilt], 1)
        parts.add(hexahedron(corners), color)
    else:
        post = back_t
        for sx in (-1, 1):
            parts.add(box([sx * (w / 2 - post / 2), (y0 + y1) / 2, z0 + back_t / 2], [post, back_h, back_t]), color)
        n_rails = int(rng.integers(2, 5))
        for r in range(n_rails):
            yy = y1 - post / 2 - r * (back_h * 0.8) / n_rails
            parts.add(box([0, yy, z0 + back_t / 2], [w - 2 * post, post, back_t * 0.8]), color)
    # base: four legs or a swivel base
    if rng.random() < 0.8:
        round_legs = rng.random() < 0.4
        splay = rng.uniform(0.0, 0.05)
        for sx in (-1, 1):
            for sz in (-1, 1):
                x, z = sx * (w / 2 - leg_t / 2), sz * (d / 2 - leg_t / 2)
                _leg(parts, round_legs, x, z, 0.0, seat_y, leg_t, color, (sx * splay, sz * splay))
        if rng.random() < 0.4:  # stretchers
            yy = rng.uniform(0.08, 0.2)
            for sx in (-1, 1):
                parts.add(box([sx * (w / 2 - leg_t / 2), yy, 0], [leg_t * 0.7, leg_t * 0.7, d - leg_t]), color)
    else:
        dark = color * 0.55
        parts.add(cylinder([0, 0.08, 0], [0, seat_y, 0], rng.uniform(0.025, 0.04), segments=14), dark)
        n_feet = 5
        foot = rng.uniform(0.22, 0.3)
        for k in range(n_feet):
            a = 2 * np.pi * k / n_feet + rng.uniform(-0.05, 0.05)
            tip = np.array([np.cos(a) * foot, 0.03, np.sin(a) * foot])
            parts.add(cylinder([0, 0.08, 0], tip, 0.02, segments=8), dark)
    if rng.random() < 0.35:  # arms
        arm_h = rng.uniform(0.16, 0.26)
        arm_t = rng.uniform(0.03, 0.05)
        for sx in (-1, 1):
            x = sx * (w / 2 + arm_t / 2)
            parts.add(box([x, seat_y + seat_t + arm_h, 0.02], [arm_t, arm_t, d * 0.85]), color)
            parts.add(box([x, seat_y + seat_t / 2 + arm_h / 2, -d * 0.3], [arm_t, seat_t + arm_h, arm_t]), color)
    return parts.mesh()


def table(rng: np.random.Generator):
    parts = PartList()
    color = _grey(rng, 0.5, 0.8)
    height, top_t = rng.uniform(0.55, 0.8), rng.uniform(0.03, 0.07)
    round_top = rng.random() < 0.35
    if round_top:
        r = rng.uniform(0.4, 0.65)
        w = d = 2 * r
        parts.add(cylinder([0, height - top_t, 0], [0, height, 0], r, segments=32), color)
    else:
        w, d = rng.uniform(0.9, 1.7), rng.uniform(0.5, 0.95)
        parts.add(box([0, height - top_t / 2, 0], [w, top_t, d]), color)
    leg_top = height - top_t
    if rng.random() < (0.6 if round_top else 0.25):  # pedestal
        col_r = rng.uniform(0.04, 0.08)
        parts.add(cylinder([0, 0.03, 0], [0, leg_top, 0], col_r, segments=16), color)
        if rng.random() < 0.5:
            parts.add(cylinder([0, 0, 0], [0, 0.03, 0], rng.uniform(0.2, 0.35) * min(w, d) * 1.2, segments=24), color)
        else:
            foot = 0.4 * min(w, d)
            parts.add(box([0, 0.015, 0], [2 * foot, 0.03, 0.06]), color)
            parts.add(box([0, 0.015, 0], [0.06, 0.03, 2 * foot]), color)
    else:
        leg_t = rng.uniform(0.04, 0.08)
        inset = rng.uniform(0.0, 0.08)
        round_legs = rng.random() < 0.4
        hx, hz = (w / 2 - leg_t / 2 - inset), (d / 2 - leg_t / 2 - inset)
        if round_top:
            hx = hz = (w / 2) * 0.62
        for sx in (-1, 1):
            for sz in (-1, 1):
                _leg(parts, round_legs, sx * hx, sz * hz, 0.0, leg_top, leg_t, color)
        if rng.random() < 0.35:  # lower shelf
            parts.add(box([0, rng.uniform(0.1, 0.25), 0], [2 * hx, 0.025, 2 * hz]), color)
        if rng.random() < 0.5 and not round_top:  # apron
            ap = rng.uniform(0.05, 0.1)
            parts.add(box([0, leg_top - ap / 2, hz], [2 * hx, ap, 0.02]), color)
            parts.add(box([0, leg_top - ap / 2, -hz], [2 * hx, ap, 0.02]), color)
    return parts.mesh()


def _wing(parts: PartList, root_x: float, span: float, z_le: float, chord: float, taper: float,
          sweep: float, thick: float, y: float, dihedral: float, color, side: int) -> None:
    """One tapered, swept wing from the root at ``x = root_x`` outwards to ``side`` (±1)."""
    tip_chord = chord * taper
    tip_x = root_x + side * span
    tip_y = y + span * dihedral
    tip_le = z_le + sweep
    c = []
    for i in range(8):
        bx, by, bz = i & 1, (i >> 1) & 1, (i >> 2) & 1
        at_tip = bx == (1 if side > 0 else 0)
        x = tip_x if at_tip else root_x
        ch = tip_chord if at_tip else chord
        le = tip_le if at_tip else z_le
        th = (thick * taper if at_tip else thick)
        yy = (tip_y if at_tip else y) + (by - 0.5) * th
        c.append([x, yy, le + bz * ch])
    parts.add(hexahedron(np.array(c)), color)


def airplane(rng: np.random.Generator):
    parts = PartList()
    color = _grey(rng, 0.6, 0.88)
    length = 1.0
    rad = rng.uniform(0.035, 0.075)
    nose = rng.uniform(0.08, 0.16)
    tail = rng.uniform(0.15, 0.25)
    z0, z1 = -length / 2 + nose, length / 2 - tail
    parts.add(cylinder([0, 0, z0], [0, 0, z1], rad, segments=18), color)
    parts.add(frustum([0, 0, z0], [0, 0, -length / 2], rad, rad * 0.15, segments=18), color)
    parts.add(frustum([0, 0, z1], [0, rad * 0.6, length / 2], rad, rad * 0.3, segments=18), color)
    span = rng.uniform(0.38, 0.62)
    chord = rng.uniform(0.14, 0.28)
    taper = rng.uniform(0.3, 0.7)
    sweep = rng.uniform(0.0, 0.3)
    wing_z = rng.uniform(-0.15, 0.05)
    wing_y = rng.choice([-0.6, 0.0, 0.6]) * rad
    dihedral = rng.uniform(-0.02, 0.12)
    for side in (-1, 1):
        _wing(parts, side * rad * 0.5, span, wing_z, chord, taper, sweep, 0.025, wing_y, dihedral, color, side)
    # horizontal stabiliser and fin
    hs = span * rng.uniform(0.28, 0.4)
    hz = length / 2 - tail * 0.9
    for side in (-1, 1):
        _wing(parts, side * rad * 0.3, hs, hz, chord * 0.5, 0.5, sweep * 0.5, 0.015, rad * 0.4, 0.0, color, side)
    fin_h = rng.uniform(0.1, 0.2)
    fin_c = chord * rng.uniform(0.5, 0.8)
    bits = np.array([[(i >> a) & 1 for a in range(3)] for i in range(8)], dtype=np.float64)
    fin_sweep = rng.uniform(0.04, 0.15)
    fz0 = length / 2 - fin_c - 0.02
    corners = np.stack([(bits[:, 0] - 0.5) * 0.018,
                        rad * 0.6 + bits[:, 1] * fin_h,
                        fz0 + bits[:, 1] * fin_sweep + bits[:, 2] * fin_c * (1 - 0.45 * bits[:, 1])], 1)
    parts.add(hexahedron(corners), color)
    n_eng = int(rng.choice([0, 2, 4], p=[0.3, 0.5, 0.2]))
    eng_r = rng.uniform(0.025, 0.04)
    for k in range(n_eng // 2):
        frac = (0.35, 0.7)[k] if n_eng == 4 else 0.4
        for side in (-1, 1):
            x = side * (rad * 0.5 + frac * span)
            zz = wing_z + frac * sweep - 0.05
            yy = wing_y + frac * span * dihedral - eng_r * 1.4
            parts.add(cylinder([x, yy, zz - 0.06], [x, yy, zz + 0.1], eng_r, segments=14), color * 0.8)
    return parts.mesh()


def car(rng: np.random.Generator):
    parts = PartList()
    color = np.clip(_grey(rng, 0.45, 0.85) * rng.uniform(0.9, 1.1, size=3), 0, 1)
    length, width = 1.0, rng.uniform(0.4, 0.5)
    wheel_r = rng.uniform(0.075, 0.105)
    clearance = wheel_r * rng.uniform(0.5, 0.8)
    body_h = rng.uniform(0.13, 0.22)
    y0, y1 = clearance, clearance + body_h
    hood_drop = rng.uniform(0.0, 0.05)
    front_slant, rear_slant = rng.uniform(0.02, 0.1), rng.uniform(0.0, 0.06)
    bits = np.array([[(i >> a) & 1 for a in range(3)] for i in range(8)], dtype=np.float64)
    zf, zr = -length / 2, length / 2
    z = np.where(bits[:, 2] > 0, zr - bits[:, 1] * rear_slant, zf + bits[:, 1] * front_slant)
    y = np.where(bits[:, 1] > 0, y1 - (1 - bits[:, 2]) * hood_drop, y0)
    parts.add(hexahedron(np.stack([(bits[:, 0] - 0.5) * width, y, z], 1)), color)
    # cabin
    cab_len = rng.uniform(0.38, 0.6)
    cab_h = rng.uniform(0.1, 0.18)
    cab_z = rng.uniform(-0.05, 0.12)
    wind, rear = rng.uniform(0.08, 0.2), rng.uniform(0.03, 0.18)
    cz0, cz1 = cab_z - cab_len / 2, cab_z + cab_len / 2
    z = np.where(bits[:, 2] > 0, cz1 - bits[:, 1] * rear, cz0 + bits[:, 1] * wind)
    ww = width * np.where(bits[:, 1] > 0, 0.82, 0.96)
    parts.add(hexahedron(np.stack([(bits[:, 0] - 0.5) * ww, np.where(bits[:, 1] > 0, y1 + cab_h, y1), z], 1)),
              color * 0.85)
    wheel_color = np.full(3, 0.18)
    wb = rng.uniform(0.28, 0.36)
    tread = rng.uniform(0.05, 0.08)
    for sz in (-1, 1):
        for sx in (-1, 1):
            x_out = sx * (width / 2 + 0.005)
            parts.add(cylinder([x_out - sx * tread, wheel_r, sz * wb], [x_out, wheel_r, sz * wb], wheel_r,
                               segments=18), wheel_color)
    return parts.mesh()


def lamp(rng: np.random.Generator):
    parts = PartList()
    color = _grey(rng, 0.45, 0.75)
    shade_color = np.clip(_grey(rng, 0.75, 0.95), 0, 1)
    height = rng.uniform(0.5, 1.3)
    base_r = rng.uniform(0.1, 0.2)
    base_t = rng.uniform(0.02, 0.05)
    if rng.random() < 0.7:
        parts.add(frustum([0, 0, 0], [0, base_t, 0], base_r, base_r * rng.uniform(0.6, 1.0), segments=24), color)
    else:
        parts.add(box([0, base_t / 2, 0], [2 * base_r, base_t, 2 * base_r * 0.8]), color)
    stem_r = rng.uniform(0.01, 0.02)
    top = np.array([0.0, height, 0.0])
    if rng.random() < 0.4:  # desk lamp with a bent arm
        elbow = np.array([0.0, height * 0.6, 0.0])
        top = elbow + np.array([rng.uniform(-0.1, 0.1), height * 0.35, rng.uniform(-0.35, -0.15)])
        parts.add(cylinder([0, base_t, 0], elbow, stem_r, segments=10), color)
        parts.add(ellipsoid(elbow, [stem_r * 1.6] * 3, rings=6, segments=10), color)
        parts.add(cylinder(elbow, top, stem_r, segments=10), color)
    else:
        parts.add(cylinder([0, base_t, 0], top, stem_r, segments=10), color)
    kind = rng.choice(["cone", "drum", "globe"], p=[0.5, 0.3, 0.2])
    sh = rng.uniform(0.15, 0.3)
    r_bot = rng.uniform(0.12, 0.25)
    if kind == "cone":
        parts.add(frustum(top - [0, sh * 0.6, 0], top + [0, sh * 0.4, 0], r_bot, r_bot * rng.uniform(0.35, 0.7),
                          segments=28), shade_color)
    elif kind == "drum":
        parts.add(cylinder(top - [0, sh * 0.5, 0], top + [0, sh * 0.5, 0], r_bot * 0.85, segments=28), shade_color)
    else:
        parts.add(ellipsoid(top, [r_bot * 0.8, r_bot * 0.75, r_bot * 0.8], rings=12, segments=24), shade_color)
    return parts.mesh()


BUILDERS: dict[str, Callable] = {"chair": chair, "table": table, "airplane": airplane, "car": car, "lamp": lamp}
