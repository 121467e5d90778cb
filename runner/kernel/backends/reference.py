"""The reference integrator: a plain NumPy transcription of the model (docs: "The model
and the mismatch"), step by step.

Deliberately unoptimised and written in the same operation order as Rockpool 3.1's
`DynapSim.evolve`, so that float32 runs reproduce Rockpool's spike counts exactly. Both fast
backends are tested against this file; it is tested against Rockpool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runner.kernel.batch import Batch, BatchResult
from runner.kernel.reductions import first_nonfinite_step, reduce_raster
from runner.physics.parameters import RECORD_NAMES

__all__ = ["Constants", "derive_constants", "integrate", "run", "synaptic_drive"]


def _exp(x: np.ndarray) -> np.ndarray:
    """exp rounded once to x's precision: NumPy's own float32 exp is off by an ulp in about
    half of the cases near 0, which shifts Rockpool's (XLA's, near-correctly rounded)
    charge factors by 1e-4 relative and moves spikes."""
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite runs are flagged, not warned
        return np.exp(x.astype(np.float64)).astype(x.dtype)


def _log(x: np.ndarray) -> np.ndarray:
    """log rounded once to x's precision (see `_exp`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x.astype(np.float64)).astype(x.dtype)


@dataclass(frozen=True)
class Constants:
    """Time-invariant per-neuron factors, each (B, N), computed once per instance."""

    kappa: np.ndarray
    kappa_prime: np.ndarray  # kappa**2 / (kappa + 1), the positive-feedback slope
    Itau_syn: np.ndarray  # clipped at Io
    Igain_syn: np.ndarray
    Itau_ahp: np.ndarray
    Igain_ahp: np.ndarray
    Itau_mem: np.ndarray
    Igain_mem: np.ndarray
    t_ref: np.ndarray
    syn_discharge: np.ndarray  # exp(-dt / tau_syn)
    syn_charge: np.ndarray  # 1 - exp(-t_pulse / tau_syn), literally (Rockpool's rounding)
    ahp_discharge: np.ndarray
    ahp_charge: np.ndarray


def derive_constants(p: dict[str, np.ndarray], dt: np.floating) -> Constants:
    """Bias currents and layout -> the factors the time loop uses (Rockpool's order)."""
    kappa = (p["kappa_n"] + p["kappa_p"]) / 2

    def tau(itau: np.ndarray, capacitance: np.ndarray) -> np.ndarray:
        return ((p["Ut"] / kappa) * capacitance) / itau

    def pulse_width(ipulse: np.ndarray, capacitance: np.ndarray) -> np.ndarray:
        return (p["Vth"] * capacitance) / ipulse

    io = p["Io"]
    itau_syn, igain_syn = np.maximum(p["Itau_syn"], io), np.maximum(p["Igain_syn"], io)
    itau_ahp, igain_ahp = np.maximum(p["Itau_ahp"], io), np.maximum(p["Igain_ahp"], io)
    tau_syn = tau(itau_syn, p["C_syn"])
    tau_ahp = tau(itau_ahp, p["C_ahp"])
    one = kappa.dtype.type(1)
    return Constants(
        kappa=kappa,
        kappa_prime=(kappa * kappa) / (kappa + one),
        Itau_syn=itau_syn,
        Igain_syn=igain_syn,
        Itau_ahp=itau_ahp,
        Igain_ahp=igain_ahp,
        Itau_mem=np.maximum(p["Itau_mem"], io),
        Igain_mem=np.maximum(p["Igain_mem"], io),
        t_ref=pulse_width(p["Iref"], p["C_ref"]),
        syn_discharge=_exp(-dt / tau_syn),
        syn_charge=one - _exp(-pulse_width(p["Ipulse"], p["C_pulse"]) / tau_syn),
        ahp_discharge=_exp(-dt / tau_ahp),
        ahp_charge=one - _exp(-pulse_width(p["Ipulse_ahp"], p["C_pulse_ahp"]) / tau_ahp),
    )


def integrate(
    parameters: dict[str, np.ndarray],
    weighted_input: np.ndarray,
    weights_rec: np.ndarray | None,
    initial_io: np.ndarray,
    dt: float,
    Iscale: float | np.ndarray,
    dtype: type = np.float32,
    synaptic: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run B instances for T steps.

    parameters: name -> (B, N); weighted_input: (B, T, N) = x @ W_in (or x itself);
    weights_rec: (N, N) [pre, post] or None; initial_io: (N,) or (B, N) nominal Io (the
    initial currents); Iscale: a scalar or (B, 1).
    Synaptic mismatch: `synaptic` (B, n_bits, N) holds each neuron's w_k = Iw_k / Iscale,
    weighted_input is (B, T, n_bits, N) = x @ (sign * bit_k(mask_in)) and weights_rec
    (n_bits, N, N) = sign * bit_k(mask_rec); the drive is `synaptic_drive`'s.
    Returns spikes (B, T, N), record {isyn, iahp, imem, vmem}: (B, T, N), final state.
    """
    p = {name: np.asarray(value, dtype=dtype) for name, value in parameters.items()}
    dt, Iscale = dtype(dt), np.asarray(Iscale, dtype=dtype)
    u = np.asarray(weighted_input, dtype=dtype)
    n_instances, n_steps, n_neurons = u.shape[0], u.shape[1], u.shape[-1]
    w_rec = None if weights_rec is None else np.asarray(weights_rec, dtype=dtype)
    c = derive_constants(p, dt)
    io, one, zero = p["Io"], dtype(1), dtype(0)
    ut_over_kappa = p["Ut"] / c.kappa

    shape = (n_instances, n_neurons)
    isyn = np.broadcast_to(np.asarray(initial_io, dtype=dtype), shape).copy()
    iahp, imem = isyn.copy(), isyn.copy()
    vmem, spikes, timer_ref = (np.zeros(shape, dtype) for _ in range(3))
    record = {name: np.empty((n_instances, n_steps, n_neurons), dtype) for name in
              ("isyn", "iahp", "imem", "vmem", "spikes")}  # fmt: skip

    for t in range(n_steps):
        # 1-3. synapse: recurrent spike counts of the previous step + this step's input
        if synaptic is None:
            recurrent = spikes @ w_rec if w_rec is not None else zero
            iws = (recurrent + u[:, t]) * Iscale
        else:
            iws = synaptic_drive(spikes, u[:, t], w_rec, synaptic) * Iscale
        isyn_inf = np.maximum((c.Igain_syn / c.Itau_syn) * iws, io)
        isyn = c.syn_discharge * isyn + c.syn_charge * isyn_inf
        # 4. adaptation, driven by this neuron's own previous spikes
        iahp_inf = (c.Igain_ahp / c.Itau_ahp) * (p["Iw_ahp"] * spikes)
        iahp = np.maximum(c.ahp_discharge * iahp + c.ahp_charge * iahp_inf, io)
        # 5-7. membrane input, blocked while refractory; positive feedback from old vmem
        ifb = io * _exp(c.kappa_prime * (vmem / p["Ut"]))
        ileak = c.Itau_mem + iahp
        iin = isyn - ileak + p["Idc"]
        iin = np.maximum(np.where(timer_ref > zero, zero, iin), io)
        imem_inf = (c.Igain_mem / c.Itau_mem) * (iin - ileak)
        f_imem = (ifb / ileak) * (imem + c.Igain_mem)
        # 8. forward Euler on imem
        tau_mem = (ut_over_kappa * p["C_mem"]) / ileak
        d_imem = (imem / (tau_mem * (imem + c.Igain_mem))) * (
            imem_inf + f_imem - imem * (one + iahp / c.Itau_mem)
        )
        imem = np.maximum(imem + d_imem * dt, io)
        # 9-11. voltage, spike count, reset and refractory timer
        vmem = ut_over_kappa * _log(imem / io)
        spikes = np.maximum(np.ceil(_log(imem / p["Ispkthr"])), zero)
        fired = spikes > zero
        imem = np.where(fired, io, imem)
        timer_ref = np.where(fired, c.t_ref, np.maximum(timer_ref - dt, zero))

        for name, value in (("isyn", isyn), ("iahp", iahp), ("imem", imem),
                            ("vmem", vmem), ("spikes", spikes)):  # fmt: skip
            record[name][:, t] = value

    state = {"isyn": isyn, "iahp": iahp, "imem": imem, "vmem": vmem,
             "spikes": spikes, "timer_ref": timer_ref}  # fmt: skip
    return record["spikes"], record, state


def synaptic_drive(
    spikes: np.ndarray, u: np.ndarray, bits_rec: np.ndarray | None, w: np.ndarray
) -> np.ndarray:
    """The drive of synaptic mismatch (B, N), in units of Iscale: per base weight k the
    integer sum S_k = spikes @ bits_rec[k] + u[:, k] (exact for integer counts), then
    sum_k w_k * S_k in k order (the kernel's order, so the float32 rounding is the same).
    u (B, n_bits, N) is the input through the masks, or (B, N) without W_in: the input
    itself, added to the sum last."""
    n_bits = w.shape[1]
    partial = np.zeros_like(w) if u.ndim == 2 else u
    if bits_rec is not None:
        partial = partial + np.stack([spikes @ bits_rec[k] for k in range(n_bits)], axis=1)
    drive = w[:, 0] * partial[:, 0]
    for k in range(1, n_bits):
        drive = drive + w[:, k] * partial[:, k]
    return drive + u if u.ndim == 2 else drive


def run(batch: Batch) -> BatchResult:
    """The reference backend: sample parameters on the host, integrate, reduce the raster."""
    parameters, nonphysical = batch.sample_parameters()
    streams = np.stack([batch.inputs.dense(s) for s in range(batch.inputs.step_ptr.shape[0])])
    x = streams[batch.inputs.instance_stream]
    q, synaptic, weights_rec = batch.quantization, None, batch.weights_rec
    if q is None:
        weighted_input = x if batch.weights_in is None else x @ batch.weights_in.astype(batch.dtype)
    else:
        synaptic, bad = batch.synaptic_weights()
        nonphysical = nonphysical + bad
        bits_in = q.signed_bits(q.mask_in, q.sign_in)
        weighted_input = x if bits_in is None else np.stack(
            [x @ b.astype(batch.dtype) for b in bits_in], axis=2
        )
        weights_rec = q.signed_bits(q.mask_rec, q.sign_rec)
    spikes, record, _ = integrate(
        parameters,
        weighted_input,
        None if weights_rec is None else weights_rec.astype(batch.dtype),
        initial_io=batch.per_instance([v.nominal["Io"] for v in batch.variants]),
        dt=batch.dt,
        Iscale=batch.per_instance([v.Iscale for v in batch.variants])[:, None],
        dtype=batch.dtype,
        synaptic=synaptic,
    )
    traces = {name: record[name] for name in RECORD_NAMES}
    return BatchResult(
        **reduce_raster(spikes, batch.bin_width),
        nonfinite_step=first_nonfinite_step(traces),
        nonphysical=nonphysical,
        raster={k: spikes[k] for k in batch.record_instances},
        traces={
            k: {name: traces[name][k] for name in RECORD_NAMES} for k in batch.record_instances
        },
    )


def unavailable() -> str | None:
    """NumPy is always there."""
    return None
