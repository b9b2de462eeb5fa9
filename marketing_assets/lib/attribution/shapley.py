"""Exact Shapley-value attribution over channel coalitions."""

from __future__ import annotations

from math import lgamma

import numpy as np
import pandas as pd

from marketing_assets.lib.attribution._paths import parse_paths

DEFAULT_MAX_CHANNELS = 20


def subset_sums(f: np.ndarray, n: int) -> np.ndarray:
    """Zeta transform over bitmasks: ``out[S] = sum(f[T] for T subset of S)``.

    ``f`` has ``2**n`` rows (any trailing shape); O(2**n * n), in place on a copy.
    """
    out = np.array(f, dtype=np.float64, copy=True)
    tail = out.shape[1:]
    for bit in range(n):
        view = out.reshape((-1, 2, 1 << bit) + tail)
        view[:, 1] += view[:, 0]
    return out


def popcounts(n: int) -> np.ndarray:
    """Number of set bits of every mask in ``range(2**n)``."""
    counts = np.zeros(1, dtype=np.int64)
    for _ in range(n):
        counts = np.concatenate([counts, counts + 1])
    return counts


def shapley_values(v: np.ndarray, n: int) -> np.ndarray:
    """Exact Shapley values of the game ``v`` (``2**n`` rows, bit i = player i; any trailing shape).

    ``phi_i = sum over S not containing i of |S|! (n-|S|-1)! / n! * (v(S + i) - v(S))``.
    """
    v = np.asarray(v, dtype=np.float64)
    tail = v.shape[1:]
    size = popcounts(n)
    weight = np.array([np.exp(lgamma(s + 1) + lgamma(n - s) - lgamma(n + 1)) for s in range(n)])
    coalition_weight = weight[np.minimum(size, n - 1)]
    phi = np.zeros((n,) + tail)
    for i in range(n):
        blocks = v.reshape((-1, 2, 1 << i) + tail)
        w = coalition_weight.reshape(-1, 2, 1 << i)[:, 0]
        gain = blocks[:, 1] - blocks[:, 0]
        phi[i] = np.tensordot(w, gain, axes=([0, 1], [0, 1])) if tail else (w * gain).sum()
    return phi


def shapley_attribution(
    paths: pd.DataFrame,
    collapse_repeats: bool = True,
    var_path: str = "path",
    var_conv: str = "conversions",
    var_value: str | None = "value",
    var_null: str | None = "nulls",
    sep: str = ">",
    max_channels: int = DEFAULT_MAX_CHANNELS,
) -> pd.DataFrame:
    """Shapley-value attribution, exact over all coalitions of channels.

    Characteristic function. A journey's channel *set* is the set of channels it touched (order and
    repeats do not matter). For a coalition S, ``conv(S)``, ``nulls(S)`` and ``value(S)`` are the
    totals of all journeys whose channel set is a subset of S (a zeta transform over bitmasks,
    O(2^n n)). Then::

        v(S)       = conv(S) / (conv(S) + nulls(S))    # conversion rate of journeys using only S
        v_value(S) = value(S) / (conv(S) + nulls(S))   # value per journey using only S

    with ``v(S) = 0`` when no journey uses only S, and ``v(empty) = 0``. When the data hold no
    nulls at all (every journey converted) a rate is meaningless, so ``v(S) = conv(S)`` and
    ``v_value(S) = value(S)``. Shapley values come from the exact weighted-marginal formula over all
    2^n coalitions and are scaled so they sum to the total conversions (``conversions``) and to the
    total value (``value``): each channel gets ``phi_c / v(all channels) * total``. With the rate
    game a channel whose presence lowers the conversion rate gets a negative share.

    Channels that only occur in journeys without conversions, nulls or value are null players:
    they get 0 and do not count towards ``max_channels``.

    Args:
        paths: Path table, as for :func:`markov_attribution`.
        collapse_repeats: Accepted for symmetry with Markov; sets ignore repeats anyway.
        var_path, var_conv, var_value, var_null: Column names.
        sep: Channel separator inside path strings.
        max_channels: Largest number of channels accepted (memory and time grow as 2^n).

    Returns:
        One row per channel, sorted by ``channel``: ``channel``, ``conversions``, ``value``,
        ``shapley_value`` (unscaled, conversion game) and ``shapley_value_value`` (value game).
        ``attrs`` holds ``total_conversions``, ``total_value``, ``characteristic`` (``"rate"`` or
        ``"count"``), ``n_journeys``, ``dropped`` and ``note``.

    Raises:
        ValueError: more than ``max_channels`` channels carry weight.
    """
    parsed = parse_paths(
        paths,
        var_path=var_path,
        var_conv=var_conv,
        var_value=var_value,
        var_null=var_null,
        sep=sep,
        collapse_repeats=collapse_repeats,
    )
    n_all = len(parsed.channels)
    total_conv = float(parsed.conversions.sum())
    total_value = float(parsed.value.sum())
    active = (parsed.conversions + parsed.nulls + parsed.value) > 0
    lengths = parsed.path_length
    token = parsed.token_channel if active.all() else parsed.token_channel[np.repeat(active, lengths)]
    players = np.unique(token)
    n = len(players)
    if n > max_channels:
        raise ValueError(
            f"exact Shapley attribution over {n} channels needs 2^{n} coalitions; "
            f"the limit is max_channels={max_channels} (merge rare channels or raise the limit)"
        )
    rate = bool(parsed.nulls.sum() > 0)
    phi = np.zeros((n_all, 2))
    grand = np.zeros(2)
    note = ""
    if n:
        player_of = np.full(n_all, -1, dtype=np.int64)
        player_of[players] = np.arange(n)
        bits = np.left_shift(np.int64(1), player_of[token])
        starts = np.concatenate([[0], np.cumsum(lengths[active])[:-1]])
        mask = np.bitwise_or.reduceat(bits, starts)
        sums = np.column_stack(
            [
                np.bincount(mask, weights=w[active], minlength=1 << n)
                for w in (parsed.conversions, parsed.nulls, parsed.value)
            ]
        )
        within = subset_sums(sums, n)
        if rate:
            journeys = within[:, 0] + within[:, 1]
            safe = np.where(journeys > 0, journeys, 1.0)
            game = np.where(journeys[:, None] > 0, within[:, [0, 2]] / safe[:, None], 0.0)
        else:
            game = within[:, [0, 2]]
        phi[players] = shapley_values(game, n)
        grand = game[-1]
    scaled = np.zeros((n_all, 2))
    for k, total in enumerate((total_conv, total_value)):
        if grand[k] != 0:
            scaled[:, k] = phi[:, k] / grand[k] * total
    if grand[0] == 0:
        note = "no conversions: every Shapley value is 0"
    elif grand[1] == 0 and total_value > 0:
        note = "the value game is 0 on the grand coalition: value credits are 0"

    result = pd.DataFrame(
        {
            "channel": parsed.channels,
            "conversions": scaled[:, 0],
            "value": scaled[:, 1],
            "shapley_value": phi[:, 0],
            "shapley_value_value": phi[:, 1],
        }
    )
    result.attrs.update(
        model="shapley",
        total_conversions=total_conv,
        total_value=total_value,
        characteristic="rate" if rate else "count",
        n_players=n,
        n_journeys=parsed.n_paths,
        dropped=parsed.dropped,
        note=note,
    )
    return result


OTHER_CHANNELS = "(other channels)"


def pooled_shapley_weights(paths: pd.DataFrame, max_channels: int = 20) -> tuple[dict[str, float], pd.DataFrame]:
    """Shapley conversions per channel; past ``max_channels`` the rarest channels play as one.

    Exact Shapley needs 2^n coalitions, so with more channels than ``max_channels`` the least
    frequent ones are pooled into one player whose value is shared equally among them.
    """
    channels = paths["path"].str.split(">").explode().str.strip()
    counts = channels[channels != ""].value_counts()
    if len(counts) <= max_channels:
        result = shapley_attribution(paths)
        return dict(zip(result["channel"], result["conversions"], strict=True)), result
    keep = set(counts.index[: max_channels - 1])
    rare = [c for c in counts.index if c not in keep]
    pooled = paths.assign(
        path=paths["path"].map(lambda p: " > ".join(c.strip() if c.strip() in keep else OTHER_CHANNELS for c in p.split(">")))
    )
    result = shapley_attribution(pooled)
    weights = dict(zip(result["channel"], result["conversions"], strict=True))
    other = weights.pop(OTHER_CHANNELS, 0.0)
    weights.update({c: other / len(rare) for c in rare})
    return weights, result
