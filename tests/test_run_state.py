"""`RunState`: the checkpoint's "state" part keeps the keys petl has always written, so a
checkpoint written before RunState existed resumes, and a round trip loses nothing."""

from __future__ import annotations

import json

from petl.training.run import RunState

# The "state" part as petl wrote it before RunState (Learner._save_checkpoint), mid-task.
LEGACY_TRAINING = {
    "fingerprint": {"model": "m"},
    "phase": "training",
    "task": 1,
    "global_step": 7,
    "acc_rows": [[0.5, 0.0]],
    "initial": [0.25, 0.5],
    "elapsed": 3.5,
    "items": [[1, 0], [1, 2], [0, 4]],
    "epoch": 1,
    "micro": 2,
    "best": 0.75,
    "bad_epochs": 1,
    "step_in_task": 3,
}


def test_a_legacy_mid_task_state_reads_back_and_writes_the_same_keys() -> None:
    run = RunState.from_state(json.loads(json.dumps(LEGACY_TRAINING)))  # as read from JSON
    assert run.task == 1 and run.global_step == 7 and run.step_in_task == 3
    assert run.items == [(1, 0), (1, 2), (0, 4)]  # tuples again, as the loop made them
    assert (run.epoch, run.micro, run.best, run.bad_epochs) == (1, 2, 0.75, 1)
    again = run.to_state("training", {"model": "m"}, elapsed=3.5)
    assert json.loads(json.dumps(again)) == LEGACY_TRAINING


def test_a_task_done_state_has_no_loop_keys() -> None:
    run = RunState(task=2, global_step=9, acc_rows=[[1.0]], initial=[0.0], items=[(2, 0)])
    state = run.to_state("task_done", {}, elapsed=1.0)
    assert set(state) == {
        "fingerprint",
        "phase",
        "task",
        "global_step",
        "acc_rows",
        "initial",
        "elapsed",
    }
    back = RunState.from_state(state)
    assert (back.task, back.global_step, back.acc_rows, back.initial) == (2, 9, [[1.0]], [0.0])
    assert back.items == [] and back.step_in_task == 0  # a new task starts afresh


def test_start_task_resets_the_place_inside_a_task() -> None:
    run = RunState(epoch=3, micro=4, best=0.9, bad_epochs=2, step_in_task=11)
    run.start_task(5, [(5, 0)])
    assert (run.task, run.items, run.step_in_task) == (5, [(5, 0)], 0)
    assert (run.epoch, run.micro, run.best, run.bad_epochs) == (0, 0, None, 0)


def test_a_saved_learner_of_the_older_format_keeps_its_generation_budget() -> None:
    # Learner.save wrote the answer budget beside the family's options before families
    # wrote their own rebuild options (`saved_config`); such a folder still loads with it.
    from petl.training.persist import _family

    old = {
        "family": {"name": "generation", "decoding": "greedy", "max_new_tokens": None},
        "answer_budget": 7,
    }
    assert _family(old).max_new_tokens == 7
    new = {"family": {"name": "generation", "decoding": "labels", "max_new_tokens": 5}}
    family = _family(new)
    assert (family.decoding, family.max_new_tokens) == ("labels", 5)
    assert _family({"family": {"name": "tokens"}}).name == "tokens"
