"""The task contract (`tasks`): masks, the typed result, the label convention; the one KEY=VALUE parser
(`config`); what every learned completer shares (`methods.completion`); the registry's errors."""

from __future__ import annotations

import numpy as np
import pytest

from motionsynth.config import deep_merge, parse_key_values, parse_value
from motionsynth.errors import MotionsynthError
from motionsynth.methods import completion
from motionsynth.methods.baselines import BASELINES, Interpolation, make_baseline
from motionsynth.ops import blend_weights
from motionsynth.registry import FAMILIES, ROLES, FamilySpec, family, names
from motionsynth.tasks import (
    Completion,
    Method,
    check_label,
    generate_mask,
    joints_mask,
    keyframe_mask,
    parse_label,
)

from helpers import make_motion, make_skeleton


# ---- masks and results ------------------------------------------------------------------------------------------
def test_mask_check_refuses_an_empty_mask_unless_generative():
    sk = make_skeleton()
    m = make_motion(sk, 20)
    empty = generate_mask(20, len(sk))
    assert empty.empty and not keyframe_mask(20, len(sk), [0]).empty
    with pytest.raises(MotionsynthError, match="observes nothing"):
        empty.check(m)
    empty.check(m, generative=True)
    for name in BASELINES:  # baselines cannot generate: a clear error, not a silent identity pose
        with pytest.raises(MotionsynthError, match="observes nothing"):
            make_baseline(name).complete(m, empty)


def test_completion_is_a_sequence_of_samples_with_options():
    sk = make_skeleton()
    m = make_motion(sk, 20)
    result = Interpolation().complete(m, keyframe_mask(20, len(sk), [0, 19]), n_samples=2)
    assert isinstance(result, Completion) and len(result) == 2 and result[0].num_frames == 20
    first, second = result  # unpacks like the list it replaces
    assert first is result.samples[0] and isinstance(result.options, dict)
    assert all(isinstance(make_baseline(n), Method) for n in BASELINES)  # the protocol's attributes are declared


def test_labels_have_one_format_checked_against_the_vocabulary():
    vocab = {"content": ["walk", "run"], "style": ["happy"]}
    check_label(None, vocab, "model")
    check_label({"content": "walk", "style": "happy"}, vocab, "model")
    with pytest.raises(MotionsynthError, match="no label kind 'mood'.*content, style"):
        check_label({"mood": "sad"}, vocab, "model")
    with pytest.raises(MotionsynthError, match="knows no content 'swim'.*walk, run"):
        check_label({"content": "swim"}, vocab, "model")
    with pytest.raises(MotionsynthError, match="not conditioned on labels"):
        check_label({"content": "walk"}, {}, "the slerp baseline")
    with pytest.raises(MotionsynthError, match="dict of names"):
        check_label("walk", vocab, "model")
    with pytest.raises(MotionsynthError, match="not conditioned on labels"):
        Interpolation().complete(make_motion(make_skeleton(), 10), keyframe_mask(10, 22, [0]), label={"c": "x"})
    assert parse_label("content=walk, style=happy") == {"content": "walk", "style": "happy"}
    assert parse_label(None) is None
    with pytest.raises(MotionsynthError, match="KIND=NAME"):
        parse_label("walk")


# ---- the one KEY=VALUE parser -------------------------------------------------------------------------------------
def test_key_values_read_numbers_as_numbers():
    """YAML 1.1 reads 1e-4 as a string; the one parser reads it as the number (bench --option decoder_lr=1e-4)."""
    assert parse_value("1e-4") == pytest.approx(1e-4) and parse_value("[30]") == [30] and parse_value("x") == "x"
    assert parse_key_values(["decoder_lr=1e-4", "gaps=[15, 30]"], "--option") == {"decoder_lr": 1e-4,
                                                                                  "gaps": [15, 30]}
    assert parse_key_values(["train.lr=3e-4", "train.augment.p_mirror=0.2"], "--set", nested=True) == \
        {"train": {"lr": 3e-4, "augment": {"p_mirror": 0.2}}}
    for bad in ("lr", "=3", "a=[1"):
        with pytest.raises(MotionsynthError, match="--option"):
            parse_key_values([bad], "--option")
    with pytest.raises(MotionsynthError, match="SECTION"):
        parse_key_values(["train..lr=1"], "--set", nested=True)
    assert deep_merge({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}}) == {"a": {"x": 1, "y": 3}}


# ---- what completers share ------------------------------------------------------------------------------------
def test_feature_mask_maps_joints_and_root():
    sk = make_skeleton()
    mask = joints_mask(6, sk, "upper", slice(2, 4))
    fm = completion.feature_mask(mask, sk)
    J = len(sk)
    assert fm.shape == (6, 6 * J + 4)
    assert (fm[:, :6 * J].reshape(6, J, 6).all(-1) == mask.joints).all()
    assert (fm[:, :6 * J].reshape(6, J, 6).any(-1) == mask.joints).all()
    root = fm[:, 6 * J:]
    assert (root[:, 0] == mask.root).all()
    np.testing.assert_array_equal(root[:, 1], [True, True, False, False, False, True])  # needs t and t - 1


def test_windowed_best_of_n_picks_each_windows_best_and_crossfades():
    """A solver proposing constant windows with known objectives: result s is every window's s-th best."""
    T, W, n = 50, 16, 2

    def solve(ks, windows):
        k = len(ks)
        values = np.array([[3.0, 1.0, 2.0]])[:, :, None, None] + 10 * ks[:, None, None, None]  # (k, 3, 1, 1)
        raw = np.broadcast_to(values, (k, 3, W, 1)).copy()
        return raw[:, :n + 1], np.tile([[3.0, 1.0, 2.0]], (k, 1))

    # the solver returns 3 proposals; only the best n = 2 are kept per window
    def solve_n(ks, windows):
        raw, obj = solve(ks, windows)
        order = np.argsort(obj, 1)[:, :n]
        return np.take_along_axis(raw, order[:, :, None, None], 1), np.take_along_axis(obj, order, 1)

    out, objective = completion.windowed_best_of_n({"x": np.zeros((T, 1))}, W, W // 2, n, 2, solve_n)
    assert out.shape == (n, T, 1) and objective.tolist() == [1.0, 2.0]
    starts, _ = blend_weights(T, W, W // 2)
    first = np.flatnonzero(starts == 0)[0]
    assert out[0, 0, 0] == 1.0 + 10 * first and out[1, 0, 0] == 2.0 + 10 * first  # window 0 alone at frame 0


def test_finish_keeps_observed_values_and_joins_them():
    sk = make_skeleton()
    m = make_motion(sk, 32, seed=3)
    other = make_motion(sk, 32, seed=4)
    from motionsynth.data.features import encode

    mask = keyframe_mask(32, len(sk), [0, 1, 31])
    out, again = completion.finish(np.stack([encode(other)] * 2), m, mask)  # (S, T, D) → S motions
    assert np.array_equal(out.rotations, again.rotations)
    assert np.array_equal(out.rotations[mask.joints], m.rotations[mask.joints])
    assert np.array_equal(out.root_positions[mask.root], m.root_positions[mask.root])
    [gen] = completion.finish(encode(other)[None], m, generate_mask(32, len(sk)))  # nothing to pin: the features as they are
    assert gen.num_frames == 32 and np.isfinite(gen.rotations).all()


# ---- the registry -------------------------------------------------------------------------------------------------
def test_registry_lists_families_and_refuses_unknown_ones():
    assert set(names("method")) == {n for n, s in FAMILIES.items() if s.role == "method"}
    assert all(s.role in ROLES for s in FAMILIES.values())
    with pytest.raises(MotionsynthError, match="unknown model family 'nope'.*hmvae"):
        family("nope")
    with pytest.raises(ValueError, match="role"):
        FamilySpec("x", object, None, "toy", "a toy")
    with pytest.raises(ValueError, match="method class"):
        FamilySpec("x", object, None, "method", "a method without a method class")
