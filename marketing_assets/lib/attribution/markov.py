"""Exact Markov-chain attribution (removal effects of an absorbing chain, no simulation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from marketing_assets.lib.attribution._paths import ParsedPaths, parse_paths

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
    if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
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

    re_sum, rev_sum = removal.sum(), removal_value.sum()
    result = pd.DataFrame(
        {
            "channel": parsed.channels,
            "conversions": removal / re_sum * total_conv if re_sum > 0 else np.zeros(n_channels),
            "value": removal_value / rev_sum * total_value if rev_sum > 0 else np.zeros(n_channels),
            "removal_effect": removal,
            "removal_effect_value": removal_value,
        }
    )
    if not note and rev_sum <= 0 < total_value:
        note = "every value removal effect is 0: value credits are 0"
    result.attrs.update(
        model="markov",
        order=int(order),
        total_conversions=total_conv,
        total_value=total_value,
        conversion_probability=probability,
        n_states=n_states,
        n_journeys=parsed.n_paths,
        dropped=parsed.dropped,
        note=note,
    )
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
    outflow = np.asarray(counts.sum(axis=1)).ravel()[:transient]
    observed = outflow > 0
    outflow[~observed] = 1.0
    q = (sp.diags(1.0 / outflow) @ counts[:transient, :transient]).tocsc()
    reward = np.column_stack(
        [
            counts[:transient, [conv]].toarray().ravel() / outflow,
            np.bincount(node[last], weights=chain.value, minlength=transient) / outflow,
        ]
    )
    system = (sp.identity(transient, format="csc") - q).tocsc()
    base_x = _absorption(system, reward)[0]
    probability = float(base_x[0])

    # Which channels each state remembers: the digits of its key (digit 0 = no channel).
    digits = (state_key[:, None] // base ** np.arange(order, dtype=np.int64)[None, :]) % base - 1
    digits[0] = -1  # (start)
    n_channels = len(chain.channels)
    removal = np.zeros(n_channels)
    removal_value = np.zeros(n_channels)
    for c in np.unique(digits[observed]):
        if c < 0:
            continue
        idx = np.flatnonzero(~(digits == c).any(axis=1))
        x = _absorption(system[idx][:, idx].tocsc(), reward[idx])[0]
        for out, full, part in ((removal, base_x[0], x[0]), (removal_value, base_x[1], x[1])):
            out[c] = min(max(1.0 - part / full, 0.0), 1.0) if full > 0 else 0.0
    return removal, removal_value, probability, int(observed[1:].sum())
