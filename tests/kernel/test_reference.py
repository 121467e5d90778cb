"""The reference integrator against hand-computed values, and the network API around it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runner import dynapsim_net_from_spec
from runner.kernel.backends.reference import derive_constants
from runner.kernel.reductions import reduce_raster
from runner.physics.parameters import DEFAULT_CURRENTS, DEFAULT_LAYOUT

D = {**DEFAULT_CURRENTS, **DEFAULT_LAYOUT}


def test_default_constants_are_the_documented_time_constants() -> None:
    p = {name: np.array([value]) for name, value in D.items()}
    c = derive_constants(p, np.float64(1e-3))
    kappa = (0.75 + 0.66) / 2
    assert c.kappa[0] == pytest.approx(kappa)
    assert c.t_ref[0] == pytest.approx(1e-3, rel=1e-12)
    assert c.syn_discharge[0] == pytest.approx(math.exp(-1e-3 / 10e-3), rel=1e-12)
    assert c.syn_charge[0] == pytest.approx(1 - math.exp(-10e-6 / 10e-3), rel=1e-9)
    assert c.ahp_discharge[0] == pytest.approx(math.exp(-1e-3 / 50e-3), rel=1e-12)
    assert c.ahp_charge[0] == pytest.approx(1 - math.exp(-1e-6 / 50e-3), rel=1e-9)
    assert c.kappa_prime[0] == pytest.approx(kappa**2 / (kappa + 1))


def hand_step(p: dict, s: dict, u: float, r: float, dt: float = 1e-3, iscale: float = 1e-8) -> dict:
    """The README's model for one neuron, in scalar double arithmetic, from the equations."""
    kappa = (p["kappa_n"] + p["kappa_p"]) / 2
    ut_k = p["Ut"] / kappa
    tau_syn = ut_k * p["C_syn"] / p["Itau_syn"]
    tau_ahp = ut_k * p["C_ahp"] / p["Itau_ahp"]
    t_pulse = p["Vth"] * p["C_pulse"] / p["Ipulse"]
    t_pulse_ahp = p["Vth"] * p["C_pulse_ahp"] / p["Ipulse_ahp"]
    isyn_inf = max(p["Igain_syn"] / p["Itau_syn"] * (r + u) * iscale, p["Io"])
    isyn = math.exp(-dt / tau_syn) * s["isyn"] + (1 - math.exp(-t_pulse / tau_syn)) * isyn_inf
    iahp_inf = p["Igain_ahp"] / p["Itau_ahp"] * p["Iw_ahp"] * s["spikes"]
    iahp = max(
        math.exp(-dt / tau_ahp) * s["iahp"] + (1 - math.exp(-t_pulse_ahp / tau_ahp)) * iahp_inf,
        p["Io"],
    )
    ileak = p["Itau_mem"] + iahp
    iin = 0.0 if s["timer"] > 0 else isyn - ileak + p["Idc"]
    iin = max(iin, p["Io"])
    imem_inf = p["Igain_mem"] / p["Itau_mem"] * (iin - ileak)
    ifb = p["Io"] * math.exp(kappa**2 / (kappa + 1) * s["vmem"] / p["Ut"])
    f_imem = ifb / ileak * (s["imem"] + p["Igain_mem"])
    tau_mem = ut_k * p["C_mem"] / ileak
    imem = s["imem"] + dt * s["imem"] / (tau_mem * (s["imem"] + p["Igain_mem"])) * (
        imem_inf + f_imem - s["imem"] * (1 + iahp / p["Itau_mem"]))  # fmt: skip
    imem = max(imem, p["Io"])
    vmem = ut_k * math.log(imem / p["Io"])
    spikes = max(math.ceil(math.log(imem / p["Ispkthr"])), 0)
    t_ref = p["Vth"] * p["C_ref"] / p["Iref"]
    timer = t_ref if spikes else max(s["timer"] - dt, 0.0)
    return dict(
        isyn=isyn,
        iahp=iahp,
        imem=p["Io"] if spikes else imem,
        vmem=vmem,
        spikes=spikes,
        timer=timer,
    )


def two_neuron_net():
    """Neuron 0 has a threshold below Io, so it fires 2 spikes at once; it excites neuron 1."""
    return dynapsim_net_from_spec(
        n_cluster=1, core_map=[0, 0], weights_in=None, weights_rec=[[0.0, 3.0], [0.0, 0.0]],
        Ispkthr=[np.array([1e-13, 1e-7])], Idc=[np.array([5e-13, 2e-10])], Iw_ahp=[1e-9],
    )  # fmt: skip


# float32 loses ~1e-3 of the ahp charge factor 1 - exp(-2e-5) to cancellation (Rockpool's
# behaviour, kept on purpose), so the float32 run is held to a looser tolerance.
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 5e-3)])
def test_two_neuron_steps_match_hand_computation(dtype: type, rtol: float) -> None:
    net = two_neuron_net()
    x = np.array([[0.0, 5.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    _, _, record = net.evolve(x, backend="reference", dtype=dtype)
    instance = net.parameters([0])  # the float32 chip values both runs start from
    params = [{name: float(values[0, i]) for name, values in instance.items()} for i in range(2)]
    io = params[0]["Io"]  # the nominal Io starts isyn, iahp and imem
    states = [dict(isyn=io, iahp=io, imem=io, vmem=0.0, spikes=0, timer=0.0) for _ in range(2)]
    for t in range(len(x)):
        recurrent = [0.0, 3.0 * states[0]["spikes"]]
        states = [hand_step(params[i], states[i], x[t, i], recurrent[i]) for i in range(2)]
        for i in range(2):
            assert record["spikes"][t, i] == states[i]["spikes"], (t, i)
            for name in ("isyn", "iahp", "imem", "vmem"):
                assert record[name][t, i] == pytest.approx(states[i][name], rel=rtol, abs=1e-30), (
                    name,
                    t,
                    i,
                )
    assert record["spikes"][0, 0] == 2  # a multi-spike step
    assert record["isyn"][1, 1] > record["isyn"][1, 0]  # neuron 1 got neuron 0's 2 spikes x 3


def test_refractory_steps_are_decided_in_float32() -> None:
    """Default Iref gives t_ref == dt in real numbers; float32 rounding blocks 1 step at
    dt=1e-3 and 10 at dt=1e-4 (Rockpool's counts)."""

    def blocked_steps(dt: float, dtype: type) -> int:
        from runner.kernel.backends.reference import derive_constants

        p = {name: np.array([value], dtype=dtype) for name, value in D.items()}
        timer, steps = derive_constants(p, dtype(dt)).t_ref[0], 0
        while timer > 0:
            timer, steps = max(timer - dtype(dt), dtype(0)), steps + 1
        return steps

    assert blocked_steps(1e-3, np.float32) == 1
    assert blocked_steps(1e-4, np.float32) == 10


def test_evolve_shapes_and_instance_zero() -> None:
    net = dynapsim_net_from_spec(
        1, [0] * 6, np.full((2, 6), 4.0), None, Idc=[1e-9], percent_mismatch=0.2, seed=4
    )
    x = (np.random.default_rng(0).random((3, 50, 2)) < 0.3).astype(float)
    spikes, state, record = net.evolve(x)
    assert spikes.shape == (3, 50, 6) and spikes.dtype == np.float32
    assert set(record) == {"isyn", "iahp", "imem", "vmem", "spikes"}
    assert all(v.shape == (3, 50, 6) for v in record.values())
    assert state["imem"].shape == (3, 6)
    single, _, _ = net.evolve(x[1])
    np.testing.assert_array_equal(single, spikes[1])
    assert net.evolve(x[1], record=False)[2] == {}
    # evolve runs mismatch instance 0: the same as simulate's first instance
    sim = net.simulate(x[1], 3, backend="reference", record=True)
    np.testing.assert_array_equal(sim.reductions.raster[0], single)


def test_simulate_counts_per_instance_and_per_trial_inputs() -> None:
    net = dynapsim_net_from_spec(
        1, [0] * 5, np.full((2, 5), 3.0), None, Idc=[1e-10], percent_mismatch=0.3, seed=2
    )
    rng = np.random.default_rng(1)
    x = (rng.random((4, 200, 2)) < 0.2).astype(float)
    per_trial = net.simulate(x, 4, backend="reference", record=True)
    for b in range(4):
        np.testing.assert_array_equal(
            per_trial.spike_counts[b], per_trial.reductions.raster[b].sum(axis=0)
        )
    shared = net.simulate(x[0], 4, backend="reference")
    assert not np.array_equal(shared.spike_counts[0], shared.spike_counts[1])  # mismatch differs
    np.testing.assert_array_equal(shared.spike_counts[0], per_trial.spike_counts[0])
    frame = shared.to_frame()
    assert len(frame) == 20 and frame["spike_count"].sum() == shared.spike_counts.sum()
    np.testing.assert_allclose(frame["rate_hz"], shared.spike_counts.ravel() / 0.2)
    later = net.simulate(x[0], 2, backend="reference", first_instance=2)
    np.testing.assert_array_equal(later.spike_counts, shared.spike_counts[2:])


def test_iw_ahp_is_honoured() -> None:
    x = np.zeros((300, 3))
    counts = [
        dynapsim_net_from_spec(1, [0] * 3, None, None, Idc=[2e-9], Iw_ahp=[w], Igain_ahp=[1e-9])
        .simulate(x, 1, backend="reference")
        .spike_counts.sum()
        for w in (5e-13, 5e-9)
    ]
    assert counts[1] < counts[0]


def test_nonfinite_state_is_flagged_per_instance() -> None:
    net = dynapsim_net_from_spec(1, [0] * 4, None, None, Idc=[1e-9], percent_mismatch=3.0, seed=0,
                                 mismatch_parameters=["Io"])  # fmt: skip
    result = net.simulate(np.zeros((100, 4)), 16, backend="reference")
    bad = result.reductions.nonfinite_step >= 0
    assert bad.any() and not bad.all()
    assert (result.reductions.nonphysical[bad] > 0).all()
    assert set(result.nonfinite_instances) == set(np.flatnonzero(bad))
    assert result.to_frame().groupby("instance")["nonfinite"].first().sum() == bad.sum()


def test_reduce_raster_by_hand() -> None:
    raster = np.zeros((1, 10, 2))
    raster[0, [1, 4, 9], 0] = [1, 2, 1]  # intervals 3 and 5
    reduced = reduce_raster(raster, bin_width=4)
    assert reduced["spike_count"].tolist() == [[4, 0]]
    assert reduced["first_spike_step"].tolist() == [[1, -1]]
    assert reduced["last_spike_step"].tolist() == [[9, -1]]
    assert reduced["spiking_steps"].tolist() == [[3, 0]]
    assert reduced["isi_sumsq"].tolist() == [[34.0, 0.0]]
    assert reduced["binned_counts"][0, :, 0].tolist() == [1, 2, 1]
