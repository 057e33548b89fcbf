"""The left/right label map under mirroring: derived from the names, overridable, applied by mirror, Augment and the
training windows."""

from __future__ import annotations

import numpy as np
import pytest

from motionsynth.data.augment import Augment, mirror
from motionsynth.data.labels import label_indices, mirror_label_map, mirror_labels, swap_sides
from motionsynth.data.windows import WindowDataset
from motionsynth.errors import MotionsynthError

from helpers import LABELS, biped_motion, biped_skeleton, labelled_cache

VOCAB = {"content": ["walk", "walk-turn-left", "walk-turn-right", "wave-left-hand", "wave-right-hand",
                     "wave-both-hands", "lift-left", "Kick_L", "Kick_R", "leftover", "Left Punch", "Right Punch"],
         "style": ["calm", "left", "right"]}


@pytest.fixture(scope="module")
def lcache(tmp_path_factory):
    return labelled_cache(tmp_path_factory.mktemp("labelled"), per_split=3, frames=48)


def test_swap_sides_swaps_whole_tokens_only_keeping_case():
    assert swap_sides("wave-left-hand") == "wave-right-hand"
    assert swap_sides("walk-turn-right") == "walk-turn-left"
    assert swap_sides("Kick_L") == "Kick_R" and swap_sides("l.kick") == "r.kick"
    assert swap_sides("Left Punch") == "Right Punch" and swap_sides("LEFT-jab") == "RIGHT-jab"
    assert swap_sides("leftover") == "leftover" and swap_sides("walk") == "walk" and swap_sides("rl-x") == "rl-x"
    assert swap_sides("left-to-right") == "right-to-left"


def test_map_is_derived_from_the_vocabulary():
    m = mirror_label_map(VOCAB)
    c = m["content"]
    assert c["walk-turn-left"] == "walk-turn-right" and c["walk-turn-right"] == "walk-turn-left"
    assert c["wave-left-hand"] == "wave-right-hand" and c["wave-both-hands"] == "wave-both-hands"
    assert c["Kick_L"] == "Kick_R" and c["Left Punch"] == "Right Punch"
    assert c["lift-left"] == "lift-left"  # no "lift-right" in the vocabulary: kept
    assert c["leftover"] == "leftover" and c["walk"] == "walk"
    assert m["style"] == {"calm": "calm", "left": "right", "right": "left"}  # every kind, generically
    for kind, mk in m.items():  # an involution over the whole vocabulary
        assert set(mk) == set(VOCAB[kind]) and all(mk[mk[n]] == n for n in mk)


def test_label_indices_cover_every_kind_of_the_vocabulary():
    assert label_indices({"content": "walk-turn-right"}, VOCAB) == {"content": 2, "style": -1}
    assert label_indices({"content": "fly", "style": "left", "other": "x"}, VOCAB) == {"content": -1, "style": 1}


def test_overrides_replace_derived_pairs_symmetrically():
    m = mirror_label_map(VOCAB, {"content": {"walk-turn-left": "walk-turn-left"}})  # switch a pair off
    assert m["content"]["walk-turn-left"] == "walk-turn-left" and m["content"]["walk-turn-right"] == "walk-turn-right"
    m = mirror_label_map(VOCAB, {"content": {"lift-left": "leftover"}})  # a pair the names do not tell
    assert m["content"]["lift-left"] == "leftover" and m["content"]["leftover"] == "lift-left"
    m = mirror_label_map(VOCAB, {"content": {"wave-left-hand": "walk"}})  # re-pairing breaks the old pair
    assert m["content"]["wave-left-hand"] == "walk" and m["content"]["walk"] == "wave-left-hand"
    assert m["content"]["wave-right-hand"] == "wave-right-hand"
    assert all(m["content"][m["content"][n]] == n for n in VOCAB["content"])
    again = mirror_label_map(VOCAB, mirror_label_map(VOCAB))  # a full map as overrides changes nothing
    assert again == mirror_label_map(VOCAB)
    with pytest.raises(MotionsynthError, match="no label kind 'action'"):
        mirror_label_map(VOCAB, {"action": {"a": "b"}})
    with pytest.raises(MotionsynthError, match="content labels have no 'jump'"):
        mirror_label_map(VOCAB, {"content": {"walk": "jump"}})
    with pytest.raises(MotionsynthError, match="must map names to names"):
        mirror_label_map(VOCAB, {"content": ["walk"]})


def test_mirror_swaps_a_motions_labels():
    sk = biped_skeleton()
    m = biped_motion(sk, T=20)
    m.labels = {"content": "walk-turn-left", "style": "calm"}
    label_map = mirror_label_map(VOCAB)
    once = mirror(m, label_map=label_map)
    assert once.labels == {"content": "walk-turn-right", "style": "calm"}
    assert mirror(once, label_map=label_map).labels == m.labels
    assert mirror(m).labels == m.labels  # no map: labels as they are
    assert mirror_labels({"content": "unknown"}, label_map) == {"content": "unknown"}


def test_augment_derives_the_map_and_takes_overrides():
    aug = Augment(p_mirror=1.0, speed_range=None, yaw=False).with_labels(VOCAB)
    assert aug.label_map["content"]["wave-left-hand"] == "wave-right-hand"
    sk = biped_skeleton()
    m = biped_motion(sk, T=20)
    m.labels = {"content": "wave-left-hand"}
    assert aug(m, np.random.default_rng(0)).labels == {"content": "wave-right-hand"}
    off = Augment(p_mirror=1.0, speed_range=None, yaw=False,
                  label_map={"content": {"wave-left-hand": "wave-left-hand"}}).with_labels(VOCAB)
    assert off(m, np.random.default_rng(0)).labels == {"content": "wave-left-hand"}
    assert Augment(p_mirror=0.0, speed_range=None, yaw=False).with_labels(VOCAB)(
        m, np.random.default_rng(0)).labels == {"content": "wave-left-hand"}


def test_mirrored_training_windows_swap_their_labels(lcache):
    names = lcache.label_names["content"]
    plain = WindowDataset(lcache, "train", 32, 16)
    mirrored = WindowDataset(lcache, "train", 32, 16, augment=Augment(p_mirror=1.0, speed_range=None, yaw=False))
    kept = WindowDataset(lcache, "train", 32, 16, augment=Augment(p_mirror=0.0, speed_range=None, yaw=False))
    swap = {"walk": "walk", "wave-left-hand": "wave-right-hand", "wave-right-hand": "wave-left-hand"}
    assert len(plain) > 0 and set(names) == set(LABELS["content"])
    seen = set()
    for k in range(len(plain)):
        a, b, c = plain[k]["labels"], mirrored[k]["labels"], kept[k]["labels"]
        assert c == a and b["style"] == a["style"]
        assert names[b["content"]] == swap[names[a["content"]]]
        seen.add(names[a["content"]])
    assert seen & {"wave-left-hand", "wave-right-hand"}  # the test sees a swapped pair
    override = WindowDataset(lcache, "train", 32, 16, augment=Augment(
        p_mirror=1.0, speed_range=None, yaw=False, label_map={"content": {"wave-left-hand": "wave-left-hand"}}))
    for k in range(len(plain)):
        assert override[k]["labels"] == plain[k]["labels"]


def test_training_config_carries_overrides(lcache):
    from motionsynth.train import resolve_config

    train_cfg, _, _ = resolve_config("classifier", "cpu", None, {"train": {"augment": {
        "p_mirror": 0.5, "label_map": {"content": {"wave-left-hand": "wave-left-hand"}}}}})
    aug = Augment(**train_cfg.augment).with_labels(lcache.label_names)
    assert aug.label_map["content"]["wave-left-hand"] == "wave-left-hand"


def test_augmented_windows_share_one_mirror_convention(lcache):
    """One convention per dataset (the twist of free joints such as the hands is not fixed by one short clip)."""
    from motionsynth.data.augment import mirror_frames

    ds = WindowDataset(lcache, "train", 32, 16, augment=Augment(p_mirror=1.0, speed_range=None, yaw=False))
    takes = [lcache.motion(i) for i in lcache.split("train")]
    np.testing.assert_array_equal(ds.augment.frames, mirror_frames(takes))
    np.testing.assert_array_equal(mirror_frames([takes[0]]), mirror_frames(takes[0]))
    m = takes[0]
    back = mirror(mirror(m, ds.augment.frames), ds.augment.frames)  # still an involution with shared frames
    np.testing.assert_allclose(back.global_positions(), m.global_positions(), atol=1e-4)
    assert WindowDataset(lcache, "train", 32, 16, augment=Augment(p_mirror=0.0)).augment.frames is None


# ---- one vocabulary across datasets (issue 25) -------------------------------------------------------------------
BANDAI_1 = {"content": ["walk", "run", "dash", "walk-back", "walk-left", "walk-right", "bow", "bye", "guide", "byebye",
                        "respond", "call", "punch", "kick", "slash", "dance-long", "dance-short"],
            "style": ["normal", "happy", "sad", "angry", "proud", "not-confident", "masculinity", "feminine",
                      "childish", "old", "tired", "active", "musical", "giant", "chimpira"]}
BANDAI_2 = {"content": ["walk", "walk-turn-left", "walk-turn-right", "run", "wave-both-hands", "wave-left-hand",
                        "wave-right-hand", "raise-up-both-hands", "raise-up-left-hand", "raise-up-right-hand"],
            "style": ["active", "elderly", "exhausted", "feminine", "masculine", "normal", "youthful"]}


def test_unify_label_merges_synonyms_onto_dataset_2_names_and_keeps_the_rest():
    from motionsynth.data.labels import LABEL_SYNONYMS, unify_label, unify_labels

    assert unify_label("style", "old") == "elderly" and unify_label("style", "tired") == "exhausted"
    assert unify_label("style", "masculinity") == "masculine" and unify_label("style", "childish") == "childish"
    assert unify_label("content", "walk-left") == "walk-left" and unify_label("action", "old") == "old"
    assert unify_labels({"content": "bow", "style": "old"}) == {"content": "bow", "style": "elderly"}
    for kind, table in LABEL_SYNONYMS.items():  # every synonym lands on a dataset-2 name, in one step
        assert set(table.values()) <= set(BANDAI_2[kind]) and not set(table.values()) & set(table)
        assert set(table) <= set(BANDAI_1[kind])
    assert all(unify_label(k, n) == n for k, names in BANDAI_2.items() for n in names)  # dataset 2 is never renamed
    merged = {k: sorted({unify_label(k, n) for n in BANDAI_1[k] + BANDAI_2[k]}) for k in BANDAI_2}
    assert len(merged["content"]) == 25 and len(merged["style"]) == 16


def test_the_merged_vocabulary_mirrors_sideways_walks_onto_each_other():
    from motionsynth.data.labels import unify_label

    names = list(dict.fromkeys(unify_label("content", n) for n in BANDAI_2["content"] + BANDAI_1["content"]))
    m = mirror_label_map({"content": names})["content"]
    assert m["walk-left"] == "walk-right" and m["walk-turn-left"] == "walk-turn-right" and m["bow"] == "bow"
