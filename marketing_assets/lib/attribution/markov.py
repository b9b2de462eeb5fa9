"""Exact Markov-chain attribution (removal effects of an absorbing chain, no simulation).

Two routes to the same chain: :func:`markov_attribution` counts the transitions of a path table in
numpy; :func:`markov_transitions_sql` counts them in DuckDB (one row per observed transition) and
:func:`markov_from_transitions` solves the chain from those counts, so Python only ever holds the
transition counts (at most states x states rows), never the journeys.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from marketing_assets.lib.attribution._paths import ParsedPaths, journeys_sql, parse_paths

# State keys are base-(channels + 1) numbers with one digit per remembered channel.
_MAX_KEY = 1 << 62
# Up to this many cells, counts are accumulated in a dense array instead of hashing.
_DENSE_KEYS = 1 << 22


def _state_keys(parsed: ParsedPaths, order: int) -> tuple[np.ndarray, int]:
    """Per touch, the key of its state: the last ``order`` channels of the journey so far.

    Digit ``j`` (weight ``base**j``) is 1 + the channel ``j`` steps back, or 0 when the journey is
    shorter than that (so the first touches of a journey have shorter states).
    """
    base = len(parsed.channels) + 1
    if base**order >= _MAX_KEY:
        raise ValueError(f"order {order} with {base - 1} channels gives too many possible states")
    token = parsed.token_channel.astype(np.int64, copy=False)
    key = token + 1
    if order > 1:
        lengths = parsed.path_length
        position = np.arange(len(token), dtype=np.int64) - np.repeat(parsed.path_start[:-1], lengths)
        for back in range(1, order):
            digit = np.zeros_like(key)
            digit[back:] = token[:-back] + 1
            digit[position < back] = 0
            key += digit * base**back
    return key, base


def _absorption(a: sp.csc_matrix, rhs: np.ndarray) -> np.ndarray:
    """Solve ``a @ x = rhs`` (rhs with one column per reward); always returns a 2-D array."""
    if a.shape[0] == 1:
        return rhs / a[0, 0]
    x = spsolve(a, rhs, permc_spec="MMD_AT_PLUS_A")
    return np.asarray(x).reshape(rhs.shape)


def markov_attribution(
    paths: pd.DataFrame,
    order: int = 1,
    collapse_repeats: bool = True,
    var_path: str = "path",
    var_conv: str = "conversions",
    var_value: str | None = "value",
    var_null: str | None = "nulls",
    sep: str = ">",
) -> pd.DataFrame:
    """Markov-chain attribution with exact removal effects.

    The journeys define an absorbing chain: a ``(start)`` state, one transient state per observed
    channel context (for ``order`` k the tuple of the last k channels; the first touches of a
    journey use the shorter tuple seen so far), and the absorbing states ``(conversion)`` and
    ``(null)``. Each journey contributes its ``conversions + nulls`` to every transition it takes,
    ``conversions`` to its last state's transition into ``(conversion)`` and ``nulls`` to the one
    into ``(null)``; transition probabilities are the weighted counts normalised per state.

    ``P(conversion)`` from ``(start)`` comes from one sparse linear solve ``(I - Q) x = r``. The
    removal effect of channel c is ``1 - P_c / P`` where ``P_c`` is the conversion probability with
    every state that contains c redirected to ``(null)``. A channel's ``conversions`` is its removal
    effect divided by the sum of all removal effects, times the total conversions (the
    ChannelAttribution convention). ``value`` is split the same way using value removal effects:
    the chain is the same, but absorption into ``(conversion)`` from a state earns the mean value of
    the journeys ending there, so ``1 - E_c[value] / E[value]``. Without a value column, value =
    conversions and both sets of removal effects coincide.

    Args:
        paths: One row per journey (or per group of identical journeys): ``var_path`` holds the
            channels joined by ``sep`` (surrounding whitespace is ignored) or a list/tuple of
            channel names; ``var_conv`` the conversions; optional ``var_value`` (default: the
            conversions) and ``var_null`` (journeys that did not convert; default 0).
        order: Memory of the chain (number of past channels in a state), >= 1.
        collapse_repeats: Count consecutive repeats of a channel once (``A > A > B`` is ``A > B``).
        var_path, var_conv, var_value, var_null: Column names.
        sep: Channel separator inside path strings.

    Returns:
        One row per channel, sorted by ``channel``: ``channel``, ``conversions``, ``value``,
        ``removal_effect`` and ``removal_effect_value``. ``conversions`` sums to the total
        conversions of the journeys with at least one channel, ``value`` to their total value.
        ``attrs`` holds ``total_conversions``, ``total_value``, ``conversion_probability``,
        ``n_states``, ``n_journeys``, ``dropped`` (totals of rows without any channel) and ``note``
        (why everything is zero, when it is).
    """
    _check_order(order)
    parsed = parse_paths(
        paths,
        var_path=var_path,
        var_conv=var_conv,
        var_value=var_value,
        var_null=var_null,
        sep=sep,
        collapse_repeats=collapse_repeats,
    )
    n_channels = len(parsed.channels)
    total_conv = float(parsed.conversions.sum())
    total_value = float(parsed.value.sum())
    removal = np.zeros(n_channels)
    removal_value = np.zeros(n_channels)
    probability = 0.0
    n_states = 0
    note = ""

    weight = parsed.conversions + parsed.nulls
    active = weight > 0
    if not active.any() or total_conv <= 0:
        note = "no conversions: every removal effect is 0"
    else:
        chain = parsed
        if not active.all():
            lengths = parsed.path_length
            chain = ParsedPaths(
                channels=parsed.channels,
                token_channel=parsed.token_channel[np.repeat(active, lengths)],
                path_start=np.concatenate([[0], np.cumsum(lengths[active])]),
                conversions=parsed.conversions[active],
                nulls=parsed.nulls[active],
                value=parsed.value[active],
                dropped=parsed.dropped,
            )
        removal, removal_value, probability, n_states = _removal_effects(chain, order, weight[active])
        if removal.sum() <= 0:
            note = "every removal effect is 0"

    return _result(
        parsed.channels, removal, removal_value, order=int(order), total_conversions=total_conv, total_value=total_value,
        conversion_probability=probability, n_states=n_states, n_journeys=parsed.n_paths, dropped=parsed.dropped, note=note,
    )


def _check_order(order: Any) -> None:
    if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")


def _result(
    channels: list[str], removal: np.ndarray, removal_value: np.ndarray, *, total_conversions: float, total_value: float,
    note: str, **attrs: Any,
) -> pd.DataFrame:
    """One row per channel: removal effects, and conversions and value split in their proportion."""
    n_channels = len(channels)
    re_sum, rev_sum = removal.sum(), removal_value.sum()
    result = pd.DataFrame(
        {
            "channel": channels,
            "conversions": removal / re_sum * total_conversions if re_sum > 0 else np.zeros(n_channels),
            "value": removal_value / rev_sum * total_value if rev_sum > 0 else np.zeros(n_channels),
            "removal_effect": removal,
            "removal_effect_value": removal_value,
        }
    )
    if not note and rev_sum <= 0 < total_value:
        note = "every value removal effect is 0: value credits are 0"
    result.attrs.update(model="markov", total_conversions=total_conversions, total_value=total_value, **attrs, note=note)
    return result


def _removal_effects(
    chain: ParsedPaths, order: int, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Removal effects (conversion and value) of every channel; every journey has weight > 0.

    Returns ``(removal, removal_value, P(conversion), number of observed states)``.
    """
    key, base = _state_keys(chain, order)
    n_keys = base**order
    if (n_keys + 2) ** 2 <= _DENSE_KEYS:
        # Keys are node ids directly (key 0 never occurs: it is (start)); unobserved keys are
        # unreachable nodes without transitions.
        node = key
        state_key = np.arange(n_keys, dtype=np.int64)
    else:
        code, uniques = pd.factorize(key)
        node = code + 1
        state_key = np.concatenate([[0], np.asarray(uniques, dtype=np.int64)])
    transient = len(state_key)
    conv, null = transient, transient + 1
    size = transient + 2

    first = chain.path_start[:-1]
    last = chain.path_start[1:] - 1
    # Consecutive touches form a transition unless the pair straddles two journeys (weight 0 then).
    pair_weight = np.repeat(weight, chain.path_length)[:-1]
    pair_weight[last[:-1]] = 0.0
    pair = node[:-1] * size
    pair += node[1:]
    end = node[last] * size
    edge = np.concatenate([node[first], end + conv, end + null])  # (start) is node 0
    edge_weight = np.concatenate([weight, chain.conversions, chain.nulls])
    if size * size <= _DENSE_KEYS:
        dense = np.bincount(edge, weights=edge_weight, minlength=size * size).astype(np.float64)
        if len(pair):
            dense += np.bincount(pair, weights=pair_weight, minlength=size * size)
        codes = np.flatnonzero(dense)
        summed = dense[codes]
    else:
        edge_code, codes = pd.factorize(np.concatenate([pair, edge]))
        summed = np.bincount(edge_code, weights=np.concatenate([pair_weight, edge_weight])).astype(np.float64)
        codes = np.asarray(codes, dtype=np.int64)
    counts = sp.csr_matrix((summed, (codes // size, codes % size)), shape=(size, size))
    end_value = np.bincount(node[last], weights=chain.value, minlength=transient)
    # Which channels each state remembers: the digits of its key (digit 0 = no channel).
    digits = (state_key[:, None] // base ** np.arange(order, dtype=np.int64)[None, :]) % base - 1
    digits[0] = -1  # (start)
    contains = np.zeros((transient, len(chain.channels)), dtype=bool)
    for column in digits.T:
        remembered = np.flatnonzero(column >= 0)
        contains[remembered, column[remembered]] = True
    return _solve(counts, end_value, contains)


def _solve(counts: sp.csr_matrix, end_value: np.ndarray, contains: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Removal effects from the weighted transition counts of the absorbing chain.

    ``counts`` is square over the transient states (node 0 is ``(start)``) followed by
    ``(conversion)`` and ``(null)``; ``end_value`` is the conversion value of the journeys ending in
    each transient state; ``contains[s, c]`` says whether state ``s`` remembers channel ``c``.
    Returns ``(removal, removal_value, P(conversion), number of observed states)``.
    """
    transient = counts.shape[0] - 2
    conv = transient
    outflow = np.asarray(counts.sum(axis=1)).ravel()[:transient]
    observed = outflow > 0
    outflow[~observed] = 1.0
    q = (sp.diags(1.0 / outflow) @ counts[:transient, :transient]).tocsc()
    reward = np.column_stack([counts[:transient, [conv]].toarray().ravel() / outflow, end_value / outflow])
    system = (sp.identity(transient, format="csc") - q).tocsc()
    base_x = _absorption(system, reward)[0]
    probability = float(base_x[0])

    n_channels = contains.shape[1]
    removal = np.zeros(n_channels)
    removal_value = np.zeros(n_channels)
    for c in np.flatnonzero(contains[observed].any(axis=0)):
        idx = np.flatnonzero(~contains[:, c])
        x = _absorption(system[idx][:, idx].tocsc(), reward[idx])[0]
        for out, full, part in ((removal, base_x[0], x[0]), (removal_value, base_x[1], x[1])):
            out[c] = min(max(1.0 - part / full, 0.0), 1.0) if full > 0 else 0.0
    return removal, removal_value, probability, int(observed[1:].sum())


def markov_transitions_sql(
    relation: str,
    order: int = 1,
    *,
    collapse_repeats: bool = True,
    var_path: str = "path",
    var_conv: str = "conversions",
    var_value: str | None = "value",
    var_null: str | None = "nulls",
    sep: str = ">",
) -> str:
    """SELECT of the chain's weighted transition counts over the journeys of ``relation`` (DuckDB).

    ``relation`` is a table, view or parenthesised query with the columns of a path table (see
    :func:`markov_attribution`); the paths are parsed as :func:`~._paths.journeys_sql` does. A state is
    the list of the last ``order`` channels (shorter at the start of a journey); ``[]`` is
    ``(start)``. One row per ``(from_state, to_state)``; ``to_state`` is NULL where journeys end:

    - ``weight``: conversions + nulls of the journeys taking the step (on a journey end, of the
      journeys ending in ``from_state``);
    - ``conversions``, ``nulls``, ``value``, ``unconverted_value``, ``paths`` (number of distinct
      paths): totals of the journeys ending in ``from_state`` (0 on the other rows). The end row of
      ``(start)`` holds the paths without any channel (not attributable).

    At most states x (states + 1) rows, whatever the number of journeys.
    """
    _check_order(order)
    journeys = journeys_sql(
        relation, var_path=var_path, var_conv=var_conv, var_value=var_value, var_null=var_null, sep=sep,
        collapse_repeats=collapse_repeats,
    )
    k = int(order)
    # Position i = 0 … n of a journey of n channels: the state after its first i channels is its last k channels
    # ([] = (start) at i = 0); each position steps to the state at i + 1, or ends the journey at i = n. A state is
    # grouped on as k plain columns (channel i - k + 1 … i, NULL before the first) and made a list once aggregated.
    def channel(offset: int) -> str:
        return f"CASE WHEN i + {offset} BETWEEN 1 AND array_length(channels) THEN channels[i + {offset}] END"

    from_keys = [f"{channel(-d)} AS f{d}" for d in range(k)]
    to_keys = [f"CASE WHEN i < array_length(channels) THEN {channel(1 - d)} END AS t{d}" for d in range(k)]

    def state(prefix: str) -> str:
        return f"list_filter([{', '.join(f'{prefix}{d}' for d in range(k - 1, -1, -1))}], lambda x: x IS NOT NULL)"

    keys = ", ".join([*(f"f{d}" for d in range(k)), *(f"t{d}" for d in range(k))])
    return f"""
    WITH positions AS (
        SELECT channels, conversions, nulls, value, unconverted_value, unnest(range(0, array_length(channels) + 1)) AS i
        FROM ({journeys})
    ),
    counted AS (
        SELECT {keys},
               sum(conversions + nulls) AS weight,
               sum(CASE WHEN at_end THEN conversions ELSE 0 END) AS conversions,
               sum(CASE WHEN at_end THEN nulls ELSE 0 END) AS nulls,
               sum(CASE WHEN at_end THEN value ELSE 0 END) AS value,
               sum(CASE WHEN at_end THEN unconverted_value ELSE 0 END) AS unconverted_value,
               count(CASE WHEN at_end THEN 1 END) AS paths
        FROM (SELECT {', '.join([*from_keys, *to_keys])}, i = array_length(channels) AS at_end,
                     conversions, nulls, value, unconverted_value
              FROM positions)
        GROUP BY {keys}, at_end
    )
    SELECT {state('f')} AS from_state, CASE WHEN t0 IS NOT NULL THEN {state('t')} END AS to_state,
           weight, conversions, nulls, value, unconverted_value, paths
    FROM counted ORDER BY from_state, to_state NULLS LAST"""


def _state(item: Any) -> tuple[str, ...] | None:
    """A state of a transitions frame as a tuple of channel names (``None``: the journey ends)."""
    if isinstance(item, (list, tuple, np.ndarray)):
        return tuple(str(c) for c in item)
    return None


def markov_from_transitions(transitions: pd.DataFrame, order: int | None = None) -> pd.DataFrame:
    """Markov attribution from transition counts (the rows of :func:`markov_transitions_sql`).

    Same result as :func:`markov_attribution` on the journeys the counts came from. ``order`` only
    labels the result (``attrs["order"]``; default: the longest state). Python work is per row of
    ``transitions``.
    """
    from_state = [_state(s) for s in transitions["from_state"]]
    to_state = [_state(s) for s in transitions["to_state"]]
    column = {
        name: transitions[name].to_numpy(dtype=np.float64, na_value=0.0)
        for name in ("weight", "conversions", "nulls", "value", "unconverted_value", "paths")
    }
    is_end = np.array([s is None for s in to_state], dtype=bool)
    is_start = np.array([not s for s in from_state], dtype=bool)
    dropped_row = is_end & is_start
    states = sorted({s for s in from_state if s} | {s for s in to_state if s})
    channels = sorted({c for s in states for c in s})
    kept = is_end & ~dropped_row
    total_conv = float(column["conversions"][kept].sum())
    total_value = float(column["value"][kept].sum())
    dropped = {name: float(column[name][dropped_row].sum()) for name in ("conversions", "nulls", "value")}
    dropped["value_without_conversions"] = float(column["unconverted_value"][is_end].sum())
    n_channels = len(channels)
    removal = np.zeros(n_channels)
    removal_value = np.zeros(n_channels)
    probability = 0.0
    n_states = 0
    note = ""

    chain = ~dropped_row & (column["weight"] > 0)
    if not chain.any() or total_conv <= 0:
        note = "no conversions: every removal effect is 0"
    else:
        node = {(): 0} | {s: i + 1 for i, s in enumerate(states)}
        transient = len(states) + 1
        source = np.array([node[s] for s in from_state], dtype=np.int64)
        target = np.array([node[s] if s is not None else transient for s in to_state], dtype=np.int64)
        step, end = chain & ~is_end, chain & is_end
        counts = sp.csr_matrix(
            (
                np.concatenate([column["weight"][step], column["conversions"][end], column["nulls"][end]]),
                (
                    np.concatenate([source[step], source[end], source[end]]),
                    np.concatenate([target[step], np.full(end.sum(), transient), np.full(end.sum(), transient + 1)]),
                ),
            ),
            shape=(transient + 2, transient + 2),
        )
        end_value = np.bincount(source[end], weights=column["value"][end], minlength=transient)
        channel_index = {c: i for i, c in enumerate(channels)}
        contains = np.zeros((transient, n_channels), dtype=bool)
        for s, i in node.items():
            contains[i, [channel_index[c] for c in s]] = True
        removal, removal_value, probability, n_states = _solve(counts, end_value, contains)
        if removal.sum() <= 0:
            note = "every removal effect is 0"

    return _result(
        channels, removal, removal_value, order=int(order or max(map(len, states), default=1)),
        total_conversions=total_conv, total_value=total_value, conversion_probability=probability, n_states=n_states,
        n_journeys=int(column["paths"][kept].sum()), dropped=dropped, note=note,
    )
