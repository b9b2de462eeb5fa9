"""Exact Shapley-value attribution over channel coalitions.

The game only depends on the journeys' channel *sets*: :func:`shapley_attribution` reads a path table,
:func:`channel_sets_sql` groups the journeys by channel set in DuckDB and :func:`shapley_from_sets`
plays the game from those groups (at most 2^channels rows), so Python never sees a journey.
"""

from __future__ import annotations

from math import lgamma
from typing import Any

import numpy as np
import pandas as pd

from marketing_assets.lib.attribution._paths import journeys_sql, parse_paths

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
    active = (parsed.conversions + parsed.nulls + parsed.value) > 0
    lengths = parsed.path_length
    token = parsed.token_channel if active.all() else parsed.token_channel[np.repeat(active, lengths)]
    players = np.unique(token)
    _check_players(len(players), max_channels)
    mask = np.empty(0, dtype=np.int64)
    if len(players):
        player_of = np.full(len(parsed.channels), -1, dtype=np.int64)
        player_of[players] = np.arange(len(players))
        bits = np.left_shift(np.int64(1), player_of[token])
        starts = np.concatenate([[0], np.cumsum(lengths[active])[:-1]])
        mask = np.bitwise_or.reduceat(bits, starts)
    return _attribution(
        parsed.channels, players, mask, parsed.conversions[active], parsed.nulls[active], parsed.value[active],
        total_conversions=float(parsed.conversions.sum()), total_value=float(parsed.value.sum()),
        rate=bool(parsed.nulls.sum() > 0), n_journeys=parsed.n_paths, dropped=parsed.dropped,
    )


def _check_players(n: int, max_channels: int) -> None:
    if n > max_channels:
        raise ValueError(
            f"exact Shapley attribution over {n} channels needs 2^{n} coalitions; "
            f"the limit is max_channels={max_channels} (merge rare channels or raise the limit)"
        )


def _attribution(
    channels: list[str], players: np.ndarray, mask: np.ndarray, conversions: np.ndarray, nulls: np.ndarray,
    value: np.ndarray, *, total_conversions: float, total_value: float, rate: bool, **attrs: Any,
) -> pd.DataFrame:
    """Shapley values of ``players`` (channel codes) from the weights of journeys (or channel sets).

    ``mask[j]`` is the coalition of row ``j`` (bit ``i`` = ``players[i]``); ``conversions``, ``nulls``
    and ``value`` are the rows' totals. Python work is O(2^n n) for n players, nothing per journey.
    """
    n_all, n = len(channels), len(players)
    phi = np.zeros((n_all, 2))
    grand = np.zeros(2)
    note = ""
    if n:
        sums = np.column_stack([np.bincount(mask, weights=w, minlength=1 << n) for w in (conversions, nulls, value)])
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
    for k, total in enumerate((total_conversions, total_value)):
        if grand[k] != 0:
            scaled[:, k] = phi[:, k] / grand[k] * total
    if grand[0] == 0:
        note = "no conversions: every Shapley value is 0"
    elif grand[1] == 0 and total_value > 0:
        note = "the value game is 0 on the grand coalition: value credits are 0"

    result = pd.DataFrame(
        {
            "channel": channels,
            "conversions": scaled[:, 0],
            "value": scaled[:, 1],
            "shapley_value": phi[:, 0],
            "shapley_value_value": phi[:, 1],
        }
    )
    result.attrs.update(
        model="shapley",
        total_conversions=total_conversions,
        total_value=total_value,
        characteristic="rate" if rate else "count",
        n_players=n,
        **attrs,
        note=note,
    )
    return result


def channel_sets_sql(
    relation: str,
    *,
    var_path: str = "path",
    var_conv: str = "conversions",
    var_value: str | None = "value",
    var_null: str | None = "nulls",
    sep: str = ">",
) -> str:
    """SELECT of the journeys of ``relation`` grouped by channel set (DuckDB): what Shapley reads.

    ``relation`` has the columns of a path table (see :func:`shapley_attribution`), parsed as
    :func:`~._paths.journeys_sql` does. One row per distinct set of channels: ``channels`` (sorted
    VARCHAR[]; ``[]`` for paths without any channel, which are not attributable), ``conversions``,
    ``nulls``, ``value``, ``unconverted_value`` and ``paths`` (number of distinct paths). At most
    2^channels rows, whatever the number of journeys.
    """
    journeys = journeys_sql(
        relation, var_path=var_path, var_conv=var_conv, var_value=var_value, var_null=var_null, sep=sep,
        collapse_repeats=False,
    )
    return f"""
    SELECT list_sort(list_distinct(channels)) AS channels, sum(conversions) AS conversions, sum(nulls) AS nulls,
           sum(value) AS value, sum(unconverted_value) AS unconverted_value, count(*) AS paths
    FROM ({journeys}) GROUP BY ALL ORDER BY channels"""


def channel_sets(
    paths: pd.DataFrame,
    *,
    var_path: str = "path",
    var_conv: str = "conversions",
    var_value: str | None = "value",
    var_null: str | None = "nulls",
    sep: str = ">",
) -> pd.DataFrame:
    """The rows of :func:`channel_sets_sql` built in pandas from a path table (Python work per distinct path)."""
    parsed = parse_paths(paths, var_path=var_path, var_conv=var_conv, var_value=var_value, var_null=var_null, sep=sep)
    keys = [
        tuple(parsed.channels[c] for c in np.unique(parsed.token_channel[a:b]))
        for a, b in zip(parsed.path_start[:-1].tolist(), parsed.path_start[1:].tolist())
    ]
    frame = pd.DataFrame(
        {"channels": keys, "conversions": parsed.conversions, "nulls": parsed.nulls, "value": parsed.value, "paths": 1}
    )
    sets = frame.groupby("channels", sort=True).sum().reset_index()
    sets.insert(4, "unconverted_value", 0.0)
    dropped = parsed.dropped
    if any(dropped.values()):
        empty = {"channels": (), "conversions": dropped["conversions"], "nulls": dropped["nulls"],
                 "value": dropped["value"], "unconverted_value": dropped["value_without_conversions"], "paths": 0}
        sets = pd.concat([pd.DataFrame([empty]), sets], ignore_index=True)
    return sets


def _channel_set(item: Any) -> tuple[str, ...]:
    return tuple(str(c) for c in item) if isinstance(item, (list, tuple, np.ndarray)) else ()


def shapley_from_sets(sets: pd.DataFrame, max_channels: int = DEFAULT_MAX_CHANNELS) -> pd.DataFrame:
    """Shapley attribution from journeys grouped by channel set (the rows of :func:`channel_sets_sql`).

    Same result as :func:`shapley_attribution` on the journeys the sets came from; Python work is
    per set (at most 2^channels) plus O(2^n n) for the game.
    """
    keys = [_channel_set(s) for s in sets["channels"]]
    column = {
        name: sets[name].to_numpy(dtype=np.float64, na_value=0.0) if name in sets else np.zeros(len(sets))
        for name in ("conversions", "nulls", "value", "unconverted_value", "paths")
    }
    has_channel = np.array([bool(k) for k in keys], dtype=bool)
    channels = sorted({c for k in keys for c in k})
    channel_index = {c: i for i, c in enumerate(channels)}
    active = has_channel & ((column["conversions"] + column["nulls"] + column["value"]) > 0)
    players = np.array(sorted({channel_index[c] for k, a in zip(keys, active) if a for c in k}), dtype=np.int64)
    _check_players(len(players), max_channels)
    player_of = {code: i for i, code in enumerate(players.tolist())}
    mask = np.array(
        [sum(1 << player_of[channel_index[c]] for c in k) for k, a in zip(keys, active) if a], dtype=np.int64
    )
    dropped = {name: float(column[name][~has_channel].sum()) for name in ("conversions", "nulls", "value")}
    dropped["value_without_conversions"] = float(column["unconverted_value"].sum())
    return _attribution(
        channels, players, mask, column["conversions"][active], column["nulls"][active], column["value"][active],
        total_conversions=float(column["conversions"][has_channel].sum()),
        total_value=float(column["value"][has_channel].sum()),
        rate=bool(column["nulls"][has_channel].sum() > 0), n_journeys=int(column["paths"][has_channel].sum()),
        dropped=dropped,
    )


OTHER_CHANNELS = "(other channels)"


def pooled_shapley_from_sets(
    sets: pd.DataFrame, max_channels: int = DEFAULT_MAX_CHANNELS
) -> tuple[dict[str, float], pd.DataFrame]:
    """Shapley conversions per channel from channel sets; past ``max_channels`` the rarest channels play as one.

    Exact Shapley needs 2^n coalitions, so with more channels than ``max_channels`` the channels on
    the fewest distinct paths (ties: by name) are pooled into one player whose value is shared
    equally among them. Returns ``({channel: conversions}, the per-player result)``.
    """
    keys = [_channel_set(s) for s in sets["channels"]]
    reach: dict[str, float] = {}
    for key, n_paths in zip(keys, sets["paths"].tolist()):
        for c in key:
            reach[c] = reach.get(c, 0.0) + n_paths
    if len(reach) <= max_channels:
        result = shapley_from_sets(sets, max_channels)
        return dict(zip(result["channel"], result["conversions"], strict=True)), result
    ranked = sorted(reach, key=lambda c: (-reach[c], c))
    keep, rare = set(ranked[: max_channels - 1]), ranked[max_channels - 1:]
    pooled = sets.assign(channels=[tuple(sorted({c if c in keep else OTHER_CHANNELS for c in key})) for key in keys])
    pooled = pooled.groupby("channels", sort=True, as_index=False).sum(numeric_only=True)
    result = shapley_from_sets(pooled, max_channels)
    weights = dict(zip(result["channel"], result["conversions"], strict=True))
    other = weights.pop(OTHER_CHANNELS, 0.0)
    weights.update({c: other / len(rare) for c in rare})
    return weights, result


def pooled_shapley_weights(paths: pd.DataFrame, max_channels: int = DEFAULT_MAX_CHANNELS) -> tuple[dict[str, float], pd.DataFrame]:
    """:func:`pooled_shapley_from_sets` on a path table (its channel sets built in pandas)."""
    return pooled_shapley_from_sets(channel_sets(paths), max_channels)
