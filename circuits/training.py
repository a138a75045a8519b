"""Sample-by-sample training and testing of a circuit in one Brian2 run.

The whole experiment is one schedule of *slots*, one sample each: training samples (learning on)
and test blocks (learning off). Stimuli are ``TimedArray`` lookups: ``slot(t)`` gives the data
row of the current slot, ``xtab``/``ytab`` hold the rows, ``learn_M(t)`` scales the update of
matrix ``M`` applied at the start of the slot (the previous sample's): 0 in test slots, and
throughout for a frozen matrix (the frozen-hidden control); ``eta_decay**k`` in the training
slots of epoch ``k``. Nothing in the training path runs Python between time steps, so the same
run works on the runtime device and, compiled, on ``cpp_standalone``.

A readout monitor records, at the start of every slot, the previous sample's window means: the
output potential ``vbar`` (the prediction is its argmax) and, on request, the factors of every
plastic projection (from which each sample's update ``eta post pre^T`` is rebuilt).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from brian2 import StateMonitor, TimedArray, get_device, second
from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
from tqdm.auto import tqdm

from circuits.wiring import PLASTICITY, Circuit


@dataclass
class Schedule:
    """Data rows presented slot by slot and whether each slot trains."""

    rows: np.ndarray  # (n_slots,) row of the stacked data table shown in each slot
    train: np.ndarray  # (n_slots,) bool: the slot's sample updates the weights
    segment: np.ndarray  # (n_slots,) evaluation b: training chunk b and the test block after it
    seen: list[int]  # training samples seen before each test block
    epoch: np.ndarray | None = None  # (n_slots,) epoch (from 0) of each slot; None: all in epoch 0

    def __post_init__(self) -> None:
        if self.epoch is None:
            self.epoch = np.zeros(len(self.rows), int)

    def __len__(self) -> int:
        return len(self.rows)


def make_schedule(n_train: int, n_test: int, epochs: int, eval_every: int, seed: int) -> Schedule:
    """Training samples in a fresh seeded permutation each epoch, and the whole test set after
    every ``eval_every`` training samples and at the end. Rows ``n_train..`` are test samples."""
    if n_train < 1 or n_test < 1 or epochs < 1 or eval_every < 1:
        raise ValueError("train samples, test samples, epochs and eval_every must all be >= 1")
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(n_train) for _ in range(epochs)])
    rows, train, segment, epoch, seen = [], [], [], [], []
    for start in range(0, len(order), eval_every):
        chunk = order[start:start + eval_every]
        rows += [chunk, n_train + np.arange(n_test)]
        train += [np.ones(len(chunk), bool), np.zeros(n_test, bool)]
        segment.append(np.full(len(chunk) + n_test, len(seen)))
        chunk_epoch = (start + np.arange(len(chunk))) // n_train
        epoch += [chunk_epoch, np.full(n_test, chunk_epoch[-1])]
        seen.append(start + len(chunk))
    return Schedule(np.concatenate(rows), np.concatenate(train), np.concatenate(segment), seen,
                    np.concatenate(epoch))


def stimulus_namespace(circuit: Circuit, x: np.ndarray, y: np.ndarray, schedule: Schedule,
                       frozen: tuple[str, ...] = ()) -> dict:
    """The TimedArrays the circuit's equations read, for data rows ``x`` (in [0, 1]) and one-hot
    ``y``; the plastic matrices named in ``frozen`` never learn. A training slot of epoch ``k``
    learns at ``eta_decay**k`` times each rate (``learn_M``). One extra slot at the end applies
    the last sample's update and lets it be read out."""
    n_in, n_out = circuit.sizes[0], circuit.sizes[-1]
    if x.shape[1] != n_in or y.shape[1] != n_out:
        raise ValueError(f"data of shape {x.shape}/{y.shape} does not fit the circuit {circuit.sizes}")
    T = circuit.sample_duration * second
    rows = np.append(schedule.rows, schedule.rows[-1]).astype(float)
    rate = schedule.train * circuit.params.eta_decay ** schedule.epoch
    learn = np.concatenate([[0.0], rate])  # slot n keeps slot n-1's update
    gates = {f"learn_{m}": TimedArray(learn * (m not in frozen), dt=T, name=f"learn_{m}")
             for m in circuit.plastic}
    return {**circuit.namespace, **gates,
            "xtab": TimedArray(np.asarray(x, float).ravel(), dt=1 * second),
            "ytab": TimedArray(np.asarray(y, float).ravel(), dt=1 * second),
            "slot": TimedArray(rows, dt=T)}


def add_readout(circuit: Circuit, factors: bool = False) -> dict[str, StateMonitor]:
    """Monitors of the previous sample's window means, recorded at the start of every slot
    before the updates and resets run. ``factors`` also records the plasticity factors."""
    T = circuit.sample_duration * second
    wanted = {"output": {"vbar", "ebar"}}
    if factors:
        for matrix in circuit.plastic:
            _, post, post_f, pre, pre_f = PLASTICITY[matrix]
            wanted.setdefault(post, set()).add(post_f)
            wanted.setdefault(pre, set()).add(pre_f)
    monitors = {}
    for group, variables in wanted.items():
        mon = StateMonitor(circuit.groups[group], sorted(variables), record=True, dt=T,
                           when="start", order=-10, name=f"readout_{group}")
        circuit.network.add(mon)
        monitors[group] = mon
    return monitors


def run_schedule(circuit: Circuit, namespace: dict, n_slots: int, progress: bool = False,
                 extra_step: bool = True, chunk: int = 200) -> None:
    """Run ``n_slots`` samples (and, with ``extra_step``, the one step that applies and records
    the last of them: give it to the last call of an experiment). On the runtime device with
    ``progress`` the run is split into chunks of ``chunk`` samples for a progress bar."""
    dt = circuit.params.dt * second
    steps = circuit.steps_per_sample

    if isinstance(get_device(), CPPStandaloneDevice) or not progress:
        circuit.network.run((n_slots * steps + int(extra_step)) * dt, namespace=namespace)
        return
    with tqdm(total=n_slots, unit="sample", desc=f"{circuit.rule} circuit") as bar:
        for start in range(0, n_slots, chunk):
            n = min(chunk, n_slots - start)
            extra = int(extra_step and start + n == n_slots)
            circuit.network.run((n * steps + extra) * dt, namespace=namespace)
            bar.update(n)


def read_samples(monitor: StateMonitor, variable: str) -> np.ndarray:
    """A readout variable per sample, ``(n_slots, n_neurons)``: record k+1 holds slot k."""
    return np.asarray(getattr(monitor, variable)).T[1:]


def sample_updates(circuit: Circuit, monitors: dict[str, StateMonitor],
                   rows: slice = slice(None)) -> dict[str, np.ndarray]:
    """The update ``eta post pre^T`` of every plastic matrix for the recorded samples ``rows``,
    shape ``(n_rows, n_post, n_pre)`` (for ``R``: the ``+R`` half, ``(n_post, Nbar)``)."""
    out = {}
    for matrix in circuit.plastic:
        eta, post, post_f, pre, pre_f = PLASTICITY[matrix]
        a = read_samples(monitors[post], post_f)[rows]
        b = read_samples(monitors[pre], pre_f)[rows]
        if matrix == "R":
            b = b[:, : b.shape[1] // 2]
        out[matrix] = -circuit.namespace[eta] * a[:, :, None] * b[:, None, :]
    return out
