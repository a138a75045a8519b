"""Neuron groups of the circuits, each in a rate mode and a spiking mode.

Activities are dimensionless: activity 1 is a firing rate of ``rate_max``. Every group sees the
sample schedule (``SCHEDULE``): ``k`` is the step within the sample, ``win1``/``win2`` are 1
inside the measurement windows of phase 1/2, ``phase2`` is 1 during phase 2. Averages over a
window are accumulated by ``d(mean)/dt = win * value / t_window``, so at the end of the window
they hold the window mean exactly (Euler integration of a piecewise-constant input is a sum).
The accumulators are reset at the start of every sample (:func:`reset_code`).

Compartment inputs (``v_b``, ``v_a``, ...) are, in rate mode, sums ``sum_j w_ij r_j`` written by
the synapses (``(summed)``); in spiking mode they are synaptic potentials
``dv/dt = -v/tau_syn`` kicked by ``w / (rate_max tau_syn)`` per presynaptic spike, so that their
mean is the same sum ``sum_j w_ij r_j`` with ``r_j`` the presynaptic rate over ``rate_max``.
"""

from __future__ import annotations

from brian2 import NeuronGroup, second

from neurosim.circuit_params import CircuitParams

SCHEDULE = """
k = timestep(t, dt) % steps_per_sample : integer
win1 = int(k >= win1_start and k < win1_stop) : 1
win2 = int(k >= win2_start) : 1
phase2 = int(k >= phase2_start) : 1
"""


def _inputs(names: list[str], mode: str) -> str:
    """Declarations of compartment inputs: summed parameters (rate) or filtered potentials."""
    if mode == "rate":
        return "".join(f"{v} : 1\n" for v in names)
    return "".join(f"d{v}/dt = -{v}/tau_syn : 1\n" for v in names)


def _window_mean(name: str, value: str, window: str) -> str:
    return f"d{name}/dt = {window}*({value})/t_window : 1\n"


def _regular_group(n: int, eqs: str, params: CircuitParams, name: str) -> NeuronGroup:
    """A group whose activity ``r`` (>= 0) is its output: in rate mode ``r`` itself, in spiking
    mode an integrate-and-fire soma ``du/dt = rate_max r``, threshold 1, reset by subtraction,
    its potential drawn from U[0, 1) at the start of each phase. A window's spike count is then
    an unbiased estimate of ``rate_max t_window r`` whose variance is at most 1/4 spike², where a
    Poisson soma's is the count itself (8 spikes² at activity 1 in a 40 ms window).

    Why not Poisson: the error a hidden neuron receives is the difference of two spike trains,
    the output's (``p``) and the label's (``y*``). With Poisson somata its noise is largest
    exactly where learning has succeeded (``p = y* = 1``: std 0.58 of activity per output in a
    40 ms window, against 0.06 with these somata, measured by
    ``benchmarks/circuit_noise.py``). That noise floor never decays, so the hidden weights
    random-walk along the mean input direction; neurons whose drive walks below zero stop
    learning (``phi' = 0``) while the others walk on, so the mean drive rises, hidden rates grow
    and the output saturates: spiking DFA fell from 82% (its frozen-hidden control) to 34% on
    digits in one epoch.
    """
    if params.mode == "rate":
        return NeuronGroup(n, eqs, method="euler", dt=params.dt * second, name=name)
    group = NeuronGroup(n, eqs + "du/dt = rate_max*r : 1\n", method="euler",
                        dt=params.dt * second, name=name, threshold="u > 1", reset="u -= 1",
                        events=_phase_events(False))
    _start_phases(group, False)
    return group


def _phase_events(replay: bool, first: str = "0", second: str = "phase2_start") -> dict:
    """The events at which a soma's potential is set: steps ``first`` and ``second`` of the
    sample (default: the start of each phase), the first pass's and the second's with ``replay``;
    a replayed first pass that starts after step 0 also sets it at step 0 (``settle_start``)."""
    if replay:
        events = {"sample_start": f"k == {first}", "second_pass": f"k == {second}"}
        if first != "0":
            events["settle_start"] = "k == 0"
        return events
    return {"phase_start": f"k == {first} or k == {second}"}


def _start_phases(group: NeuronGroup, replay: bool) -> None:
    """Draw the soma's potential ``u`` from U[0, 1) at the start of each phase; with ``replay``
    draw it once per sample (``u0``) and start the second pass from the same ``u0``, and draw it
    at the start of the first settling interval too (``settle_start``)."""
    if replay:
        group.run_on_event("sample_start", "u0 = rand()\nu = u0")
        group.run_on_event("second_pass", "u = u0")
        if "settle_start" in group.events:
            group.run_on_event("settle_start", "u = rand()")
    else:
        group.run_on_event("phase_start", "u = rand()")


def input_group(n: int, params: CircuitParams, modulated: bool, window: str) -> NeuronGroup:
    """The input population: activity ``x`` of the current sample (a firing rate over
    ``rate_max``).

    ``modulated`` (PEPITA): during phase 2 the drive is ``x + s m`` with ``m = F e`` arriving
    from the error population; rate mode keeps its sign, as the rate rule does.
    ``xbar`` is the mean firing intensity over ``window`` (the window mean of the drive; of
    ``max(0, drive)`` for Poisson encoders), the presynaptic factor of the input->hidden
    plasticity. It is the intensity, not the spike count, in both modes: a count shares its
    Poisson noise with the postsynaptic response it caused, which adds a Hebbian term
    ``eta W Var(x)`` to PEPITA's update and makes the weights grow without bound.

    Spiking mode, ``params.input_code``: ``"regular"`` (default) integrate-and-fire encoders,
    ``du/dt = rate_max (x + s m)`` from a potential drawn from U[0, 1) per sample and held at 0
    while the drive is negative (a membrane integrating an inhibitory input), or ``"poisson"``
    (Poisson spikes at ``rate_max max(0, x + s m)``). The regular encoders integrate the signed
    drive because ``m`` is a train of pulses: the error neurons fire few regular spikes (``|e|``
    ~0.1 is about one spike per 40 ms window), each a ``tau_syn``-wide pulse of ``m``. A rate
    clipped at 0 at every step cut the negative pulses on dark pixels (``x`` = the baseline) and
    added input in phase 2 only: over 200 digits samples at the initial weights PEPITA's mean
    mismatch was 0.0038 against the rate rule's 0.0067 (``f_scale`` 0.5, ReLU;
    ``benchmarks/circuit_mismatch_bias.py``), and 0.0072 with the signed drive.

    With ``modulated`` and regular encoders both passes of a sample start from the same
    potential: the second pass repeats the first pass's spikes,
    shifted only where ``F e`` changes the rate. Biologically: a stimulus held for the two
    passes (~100 ms) evokes the same precisely timed spikes on its repeat, as retinal and
    thalamic responses to a repeated stimulus do, so the second pass differs from the first by
    the modulation alone instead of by two independent draws of spike noise (see
    ``circuits/pepita.py`` for what that does to PEPITA's mismatch ``r1 - r2``).
    """
    drive = "x + modulation_sign*phase2*m" if modulated else "x"
    eqs = SCHEDULE + "x = xtab((slot(t)*n_in + i)*second) : 1\n"
    if modulated:
        eqs += _inputs(["m"], params.mode)
    if params.mode == "rate":
        eqs += f"r = {drive} : 1\n" + _window_mean("xbar", "r", window)
        return NeuronGroup(n, eqs, method="euler", dt=params.dt * second, name="input")
    if params.input_code == "poisson":
        eqs += f"r = clip({drive}, 0, inf) : 1\n" + _window_mean("xbar", "r", window)
        return NeuronGroup(n, eqs, method="euler", dt=params.dt * second, name="input",
                           threshold="rand() < rate_max*r*dt")
    eqs += (f"drive = {drive} : 1\n" + _window_mean("xbar", "drive", window)
            + "du/dt = rate_max*(clip(drive, 0, inf) + clip(drive, -inf, 0)*int(u > 0)) : 1\n")
    group = NeuronGroup(n, eqs + "u0 : 1\n", method="euler",
                        dt=params.dt * second, name="input", threshold="u > 1", reset="u -= 1",
                        events=_phase_events(modulated))
    _start_phases(group, modulated)
    return group


def hidden_group(n: int, params: CircuitParams, delta: str, forward_rate: str,
                 replay: bool = False) -> NeuronGroup:
    """Two-compartment hidden neurons: basal dendrite ``v_b`` (feedforward input), apical
    dendrite ``v_a`` (feedback, modulation or target), soma ``u``.

    The apical compartment is electrotonically segregated (its coupling to the soma is taken to
    zero): it sets plasticity, not the somatic rate. Rate mode: ``r = phi(v_b)`` (the soma at
    steady state), ``phi(v) = max(0, v)`` (``params.hidden_activation`` "relu") or
    ``min(max(0, v), 1)`` ("clipped-relu": the neuron fires at most ``rate_max``, one spike per
    refractory period ``1/rate_max``). Spiking mode: a non-leaky integrate-and-fire soma
    ``du/dt = rate_max v_b`` (``rate_max min(v_b, 1)`` clipped; held at 0 while ``u <= 0`` and
    ``v_b <= 0``), threshold 1, reset by subtraction, whose rate is ``rate_max phi(v_b)`` for
    constant drive (clipped, a drive that fluctuates across 1 fires at the mean of
    ``min(v_b, 1)``, below ``phi`` of its mean).
    At the start of each phase the soma's potential is drawn uniformly from [0, 1) (the
    ``phase_start`` event): a window's spike count is then an unbiased estimate of
    ``rate_max t_window phi(v_b)``. With a fixed or carried-over start the count is biased by up
    to half a spike per window, differently in the two phases, and PEPITA's mismatch
    ``r1 - r2`` (or the interneuron variant's) drifts the hidden weights. With ``replay``
    (PEPITA) the potential is drawn once per sample at the start of window 1 and set to the same
    value at the start of window 2, where the compartments have settled in both passes: with the
    input repeating its spikes (``input_group``) the two windows' counts then differ by the
    modulation's effect alone, and ``r1 - r2`` is still unbiased. The potential is also drawn at
    the start of phase 1's settling interval: the spikes fired there reach into window 1 through
    the synaptic filter of the interneurons that store the first pass (``circuits/pepita.py``),
    and from a potential of 0 they came late and too few (that store read 0.0018 below ``r1``,
    digits, 200 samples; about 0 with the draw).

    Window means: ``r1``/``r2`` rate in window 1/2 (spike counts in spiking mode), ``vbar1``/``vbar2``
    basal potential in window 1/2, ``abar1``/``abar2`` apical potential in window 1/2. From them
    ``phi1``/``phi2`` are ``phi(vbar1)``/``phi(vbar2)`` and ``dphi1`` is ``phi'(vbar1)``
    (``[vbar1 > 0]``, clipped ``[0 < vbar1 < 1]``). ``delta`` is the rule's postsynaptic factor of
    the input->hidden update ``dW_1 = delta xbar^T``; ``forward_rate`` (``r1`` or ``r2``) is the
    presynaptic factor of the hidden->output update.
    """
    top = "1" if params.hidden_activation == "clipped-relu" else "inf"
    dphi = "int(vbar1 > 0 and vbar1 < 1)" if top == "1" else "int(vbar1 > 0)"
    means = (_window_mean("vbar1", "v_b", "win1") + _window_mean("vbar2", "v_b", "win2")
             + _window_mean("abar1", "v_a", "win1") + _window_mean("abar2", "v_a", "win2")
             + f"phi1 = clip(vbar1, 0, {top}) : 1\nphi2 = clip(vbar2, 0, {top}) : 1\n"
             + f"dphi1 = {dphi} : 1\n")
    common = SCHEDULE + means + f"delta = {delta} : 1\nh_fwd = {forward_rate} : 1\n"
    if params.mode == "rate":
        eqs = (common + _inputs(["v_b", "v_a"], params.mode) + f"r = clip(v_b, 0, {top}) : 1\n"
               + _window_mean("r1", "r", "win1") + _window_mean("r2", "r", "win2"))
        return NeuronGroup(n, eqs, method="euler", dt=params.dt * second, name="hidden")
    drive = "clip(v_b, -inf, 1)" if top == "1" else "v_b"
    eqs = (common + _inputs(["v_b", "v_a"], params.mode)
           + f"du/dt = rate_max*{drive}*int(u > 0 or v_b > 0) : 1\nr1 : 1\nr2 : 1\nu0 : 1\n")
    group = NeuronGroup(n, eqs, method="euler", dt=params.dt * second, name="hidden",
                        threshold="u > 1",
                        events=_phase_events(replay, "win1_start", "win2_start") if replay
                        else _phase_events(False),
                        reset="u -= 1\nr1 += win1/(rate_max*t_window)\nr2 += win2/(rate_max*t_window)")
    _start_phases(group, replay)
    return group


def output_group(n: int, params: CircuitParams, clamp_phase2: bool) -> NeuronGroup:
    """Output neurons: ``p = sigmoid(v_b)``; error ``e = p - y*`` with the label ``y*`` as a
    teaching input. ``ebar``: mean error over window 1 (the delta rule's postsynaptic factor),
    ``vbar``: mean potential over window 1 (the class read out by argmax). With
    ``clamp_phase2`` (FA) the output fires at the target during phase 2. Spiking mode: an
    integrate-and-fire soma firing at ``rate_max r`` (:func:`_regular_group`).
    """
    clamp = "phase2" if clamp_phase2 else "0"
    eqs = (SCHEDULE + "y = ytab((slot(t)*n_out + i)*second) : 1\n" + _inputs(["v_b"], params.mode)
           + "p = 1/(1 + exp(-v_b)) : 1\n"
           + f"r = p*(1 - {clamp}) + y*{clamp} : 1\n"
           + _window_mean("ebar", "p - y", "win1") + _window_mean("vbar", "v_b", "win1"))
    return _regular_group(n, eqs, params, "output")


def label_group(n: int, params: CircuitParams) -> NeuronGroup:
    """The label population: activity ``y*`` (one-hot target) of the current sample."""
    eqs = SCHEDULE + "y = ytab((slot(t)*n_out + i)*second) : 1\nr = y : 1\n"
    return _regular_group(n, eqs, params, "label")


def relay_group(n: int, params: CircuitParams, name: str, n_inputs: int, hold: bool,
                mean_window2: bool = False) -> NeuronGroup:
    """``n`` neurons firing ``max(0, v)``, ``v`` the sum of their ``n_inputs`` compartment inputs;
    ``vbar`` is the mean potential over window 1 (with ``mean_window2``, ``vbar2`` over window 2).

    A signed vector ``z`` of size m is carried by ``n = 2m`` of them: the incoming weights give
    the first half ``v = z`` and the second half ``v = -z``, so the rates are ``max(0, z)`` and
    ``max(0, -z)`` and a downstream weight pair ``(+w, -w)`` receives ``w z``.

    ``hold=False``: the neurons fire their current potential (``r = max(0, v)``). ``hold=True``:
    they store ``vbar`` in phase 1 and fire it during phase 2 (``r = phase2 max(0, vbar)``), as
    PEPITA's error population and the store-and-replay interneurons do.
    """
    ins = [f"v_in{k}" for k in range(1, n_inputs + 1)]
    rate = "phase2*clip(vbar, 0, inf)" if hold else "clip(v, 0, inf)"
    eqs = (SCHEDULE + _inputs(ins, params.mode) + f"v = {' + '.join(ins)} : 1\n"
           + _window_mean("vbar", "v", "win1") + f"r = {rate} : 1\n")
    if mean_window2:
        eqs += _window_mean("vbar2", "v", "win2")
    return _regular_group(n, eqs, params, name)


def reset_code(group: NeuronGroup) -> str:
    """Zero every window mean and every compartment state of ``group`` (start of a sample)."""
    skip = {"x", "y", "r", "p", "v", "k", "win1", "win2", "phase2", "delta", "h_fwd", "lastspike",
            "not_refractory", "i", "N", "t", "dt", "t_in_timesteps"}
    names = [v for v in group.equations.names if v not in skip
             and v not in group.equations.subexpr_names]
    return "\n".join(f"{v} = 0" for v in names)
