"""Partial least squares regression (PLS2) on a torch back end, without scikit-learn."""

from __future__ import annotations

import torch


def pls_fit(X: torch.Tensor, Y: torch.Tensor, n_components: int = 25, scale: bool = True
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PLS regression (PLS2, Wold's regression deflation), the model of sklearn's ``PLSRegression``.

    Each component's weights are the dominant singular vectors of the deflated cross-covariance
    ``S = XₖᵀY`` (what sklearn's NIPALS converges to; sign fixed as in sklearn). ``S`` is updated by a
    rank-one downdate (``S ← S − pₖ (tₖᵀtₖ) qₖᵀ``, exact because the scores are orthogonal) instead
    of being recomputed, so each component costs O(n·p + p·q²).

    Returns
    -------
    (coef (features × targets) on the original scale, x_mean, y_mean); predict as
    ``(X − x_mean) @ coef + y_mean``.
    """
    n, p = X.shape
    q = Y.shape[1]
    if n_components > min(n, p):
        raise ValueError(f"n_components={n_components} exceeds min(samples, features) = {min(n, p)}")
    x_mean, y_mean = X.mean(0), Y.mean(0)
    Xk, Yc = X - x_mean, Y - y_mean
    one = torch.ones((), dtype=X.dtype, device=X.device)
    if scale:
        x_std = Xk.std(0, correction=1)
        y_std = Yc.std(0, correction=1)
        x_std = torch.where(x_std == 0, one, x_std)
        y_std = torch.where(y_std == 0, one, y_std)
        Xk, Yc = Xk / x_std, Yc / y_std
    else:
        x_std = torch.ones(p, dtype=X.dtype, device=X.device)
        y_std = torch.ones(q, dtype=X.dtype, device=X.device)
    S = Xk.T @ Yc
    # Scores are orthogonal, so the deflated Xₖ never has to be formed: Xₖw = X₀w − T(Pᵀw) and
    # Xₖᵀt = X₀ᵀt (earlier scores are orthogonal to t).
    k_max = n_components
    T = torch.zeros(n, k_max, dtype=X.dtype, device=X.device)
    P = torch.zeros(p, k_max, dtype=X.dtype, device=X.device)
    Ws, Qs = [], []
    eps = torch.finfo(X.dtype).eps
    s_norm0 = float(torch.linalg.matrix_norm(S))
    for k in range(k_max):
        if q == 1:
            w = S[:, 0]
        elif q <= p:
            _, vecs = torch.linalg.eigh(S.T @ S)
            w = S @ vecs[:, -1]
        else:
            _, vecs = torch.linalg.eigh(S @ S.T)
            w = vecs[:, -1]
        norm = torch.linalg.vector_norm(w)
        if not torch.isfinite(norm) or norm <= 100 * eps * max(1.0, s_norm0):
            break  # y residual is constant (sklearn warns and stops here too)
        w = w / norm
        w = w * torch.sign(w[torch.argmax(w.abs())])
        t = Xk @ w - T[:, :k] @ (P[:, :k].T @ w)
        tt = t @ t
        p_load = Xk.T @ t / tt
        q_load = Yc.T @ t / tt  # = deflated Yₖᵀt / tᵀt because t ⟂ earlier scores
        S = S - torch.outer(p_load, q_load) * tt
        T[:, k], P[:, k] = t, p_load
        Ws.append(w)
        Qs.append(q_load)
    k = len(Ws)
    if k == 0:  # constant targets: predict their mean
        return torch.zeros(p, q, dtype=X.dtype, device=X.device), x_mean, y_mean
    P = P[:, :k]
    W, Q = torch.stack(Ws, 1), torch.stack(Qs, 1)
    rot = W @ torch.linalg.pinv(P.T @ W)
    coef = (rot @ Q.T) * y_std[None, :] / x_std[:, None]
    return coef, x_mean, y_mean
