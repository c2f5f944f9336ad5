"""Rotation (oblimin, promax, varimax through factor_analyzer's Rotator) and the deterministic sign and order."""
from __future__ import annotations

import numpy as np


def _rotate(L: np.ndarray, rotation: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Rotate with factor_analyzer's Rotator (GPA oblimin, varimax, promax); phi for oblique rotations."""
    if L.shape[1] < 2 or rotation == "none":
        return L, None
    from factor_analyzer.rotator import Rotator

    rot = Rotator(method=rotation)
    Lr = np.asarray(rot.fit_transform(L), float)
    phi = None if rot.phi_ is None else np.asarray(rot.phi_, float)
    return Lr, phi


def _canonical(L: np.ndarray, phi: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Deterministic sign and order: each factor's largest-|loading| word positive; factors by explained variance
    (sum of squared pattern loadings), largest first; phi permuted and re-signed to match."""
    if L.shape[1] == 0:
        return L, phi
    idx = np.argmax(np.abs(L), axis=0)
    signs = np.sign(L[idx, np.arange(L.shape[1])])
    signs[signs == 0] = 1.0
    L = L * signs
    if phi is not None:
        phi = phi * np.outer(signs, signs)
    ss = (L**2).sum(axis=0)
    order = np.argsort(-ss, kind="stable")
    L = L[:, order]
    if phi is not None:
        phi = phi[np.ix_(order, order)]
        phi = (phi + phi.T) / 2.0
        np.fill_diagonal(phi, 1.0)
    return L, phi
