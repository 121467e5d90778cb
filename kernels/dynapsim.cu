// DynapSim batch integrator: one thread block per mismatch instance, DYN_NPT neurons per
// thread, DYN_NTHREADS threads per block (compile-time constants prepended by the host).
// Thread `tid` owns neurons k * DYN_NTHREADS + tid (k < DYN_NPT): a warp's reads of a
// weight row, and its writes of the outputs, touch consecutive addresses (coalesced).
//
// The float32 model math follows runner/kernel/backends/reference.py operation by operation;
// compile without FMA contraction (NVRTC --fmad=false, g++ -ffp-contract=off). exp and log
// are the kernel's own (exact_math.cuh), so every build computes the same bits.
// Mismatched parameters are drawn here from the Philox stream of runner/physics/mismatch.py.
// Per step: drive from last step's spike list + this step's input events, a vectorisable
// update of every owned neuron, then one exchange of (neuron, count) pairs of the spiking
// neurons through shared memory, ordered by neuron index on every target (warp ballots and
// shuffles, two block barriers per step).
// This file is what both builds compile; the one-thread host build's vector paths (register
// blocks, int16 lanes, AVX-512 where the CPU has it) are in host_vector.h, which only that
// build includes (DYN_HOST_VECTORS, below), so the GPU source holds none of them.
#include "portability.h"
#include "philox.cuh"
#include "exact_math.cuh"

#if !defined(DYN_N) || !defined(DYN_NPT) || !defined(DYN_NTHREADS)
#error "define DYN_N, DYN_NPT and DYN_NTHREADS before compiling dynapsim.cu"
#endif
#if DYN_NPT * DYN_NTHREADS < DYN_N
#error "DYN_NPT * DYN_NTHREADS must cover DYN_N neurons"
#endif
#if DYN_NTHREADS > 1 && (DYN_NTHREADS % DYN_WARP != 0 || DYN_NTHREADS / DYN_WARP > DYN_WARP)
#error "DYN_NTHREADS must be whole warps, at most DYN_WARP of them"
#endif
#define DYN_NWARPS ((DYN_NTHREADS + DYN_WARP - 1) / DYN_WARP)

// Weights as stored: int8 or int16 when every weight is an integer in range (quantized
// weights are; runner/kernel/kernel_calls.py: weight_bits), else float. The conversion to float
// is exact, so the sums are bitwise the same; rows are 4 or 2 times fewer bytes to fetch.
#ifndef DYN_WEIGHT_BITS
#define DYN_WEIGHT_BITS 32
#endif
#if DYN_WEIGHT_BITS == 8
typedef signed char dyn_weight;
#elif DYN_WEIGHT_BITS == 16
typedef short dyn_weight;
#else
typedef float dyn_weight;
#endif

#define DYN_SLOTS (DYN_NPT * DYN_NTHREADS)  // neurons, and the padding slots of some threads
#define DYN_PADDED (DYN_SLOTS != DYN_N)
#define DYN_PRAGMA(x) _Pragma(#x)
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define DYN_SIMD_REDUCE(...) _Pragma("unroll")
#define DYN_UNROLL _Pragma("unroll")
#else
#define DYN_SIMD_REDUCE(...) DYN_PRAGMA(omp simd reduction(__VA_ARGS__))
#define DYN_UNROLL
#endif

// Parameter indices: runner.physics.parameters.PARAMETER_NAMES (also the Philox parameter word).
enum {
    P_IDC, P_IF_NMDA, P_IGAIN_AHP, P_IGAIN_MEM, P_IGAIN_SYN, P_IPULSE_AHP, P_IPULSE, P_IREF,
    P_ISPKTHR, P_ITAU_AHP, P_ITAU_MEM, P_ITAU_SYN, P_IW_AHP, P_C_AHP, P_C_SYN, P_C_PULSE_AHP,
    P_C_PULSE, P_C_REF, P_C_MEM, P_IO, P_KAPPA_N, P_KAPPA_P, P_UT, P_VTH, DYN_N_PARAMETERS
};
enum { R_ISYN, R_IAHP, R_IMEM, R_VMEM, DYN_N_RECORDS };

#define DYN_MAX_COUNT 1000000000.0f  // a non-finite spike count is clamped, and flagged

// np.maximum(x, lo) for a non-NaN floor `lo`: a NaN x propagates. One compare and one
// select, so the loops that use it stay branch-free and vectorise.
DYN_FN float dyn_max(float x, float lo) { return x < lo ? lo : x; }

struct dyn_mismatch {
    dyn_u64 seed;
    dyn_u32 mask;  // bit p: parameter p deviates (0 when the model is inactive)
    int lognormal, clip, shared;
    double sigma, half_sigma_sq, shared_a, shared_b;  // shared_a = sqrt(1-f), shared_b = sqrt(f)
    float sigma_f;
};

// Neuron owned by slot k of thread tid, clamped so that padding slots read valid memory.
DYN_FN int dyn_neuron(int tid, int k) {
    const int n = k * DYN_NTHREADS + tid;
    return (DYN_PADDED && n >= DYN_N) ? DYN_N - 1 : n;
}
DYN_FN bool dyn_valid(int tid, int k) { return !DYN_PADDED || k * DYN_NTHREADS + tid < DYN_N; }

// The one-thread host build's vector paths live in host_vector.h, which host.cpp names as
// DYN_HOST_VECTORS: an #include through a macro, which the GPU source (runner/kernel/
// kernel_calls.py: kernel_source) does not inline, so NVRTC sees none of them. Without
// them: per-neuron arrays (state, factors) of DYN_ROW = DYN_NPT floats, the drive by the
// row-by-row loops over dense rows only, and step 3 neuron by neuron.
#ifdef DYN_HOST_VECTORS
#include DYN_HOST_VECTORS
#else
#define DYN_ROW DYN_NPT
#define DYN_DRIVE_BLOCKED 0
#define DYN_SPARSE_ROWS 0
#endif

// The per-neuron factors a step reads (time-invariant, from the parameters). A GPU thread
// keeps its neurons' state and factors in registers; when they are too many for its share of
// the register file (several neurons a thread), the first DYN_SHARED_FACTORS factors of this
// list live in shared memory instead (runner/kernel/kernel_calls.py: shared_factors).
enum {
    F_T_REF, F_ISPKTHR, F_TAU_MEM_NUM, F_MEM_RATIO, F_IDC, F_IW_AHP, F_AHP_RATIO, F_AHP_CHG,
    F_AHP_DIS, F_SYN_RATIO, F_SYN_CHG, F_SYN_DIS, F_KAPPA_PRIME, F_UT, F_UT_KAPPA, F_IGAIN_MEM,
    F_ITAU_MEM, F_IO
};
#define DYN_N_FACTORS 18
static_assert(F_IO + 1 == DYN_N_FACTORS, "DYN_N_FACTORS counts the factors");
#ifndef DYN_SHARED_FACTORS
#define DYN_SHARED_FACTORS 0
#endif
#if DYN_SHARED_FACTORS < 0 || DYN_SHARED_FACTORS > DYN_N_FACTORS
#error "DYN_SHARED_FACTORS must be 0 to DYN_N_FACTORS"
#endif

// One factor of this thread's neurons, slot k at [k]: an array in the thread's own registers,
// or a shared-memory row of DYN_SLOTS floats, at k * DYN_NTHREADS + tid (a warp's reads hit
// distinct banks; padding slots have their own places).
struct dyn_shared_factor {
    float* column;
    __device__ __forceinline__ float& operator[](int k) { return column[k * DYN_NTHREADS]; }
};
template <bool in_shared>
struct dyn_factor_storage {
    typedef float type[DYN_ROW];
};
template <>
struct dyn_factor_storage<true> {
    typedef dyn_shared_factor type;
};
DYN_FN void dyn_factor_bind(float (&)[DYN_ROW], float*) {}
DYN_FN void dyn_factor_bind(dyn_shared_factor& factor, float* at) { factor.column = at; }
// Declares factor `name` (list entry f) of thread tid, s_factors being the shared ones.
#define DYN_FACTOR(name, f)                                             \
    typename dyn_factor_storage<((f) < DYN_SHARED_FACTORS)>::type name; \
    dyn_factor_bind(name, s_factors + (f) * DYN_SLOTS + tid)

// Parameter p of this thread's neurons (nominal, or drawn as
// runner.physics.mismatch.sample_parameters does); returns its count of non-physical samples. One
// parameter at a time, so that a kernel keeps only the few it is combining in registers.
// Loops over neurons, branch-free inside, so that the host build vectorises the Philox and
// Box-Muller arithmetic.
template <class Values>
DYN_FN int dyn_draw(Values& value, int p, const float* __restrict__ nominal,
                    const int* __restrict__ core_map, dyn_u64 instance, const dyn_mismatch& m,
                    int tid) {
    const float* row = nominal + p * DYN_N;
    if (!((m.mask >> p) & 1u)) {
        DYN_SIMD
        for (int k = 0; k < DYN_NPT; ++k) value[k] = row[dyn_neuron(tid, k)];
        return 0;
    }
    double z[DYN_NPT];
#ifdef DYN_HOST_VECTORS
    dyn_neuron_normals(m.seed, instance, (dyn_u32)p, z);  // host_vector.h: the same draws
#else
    DYN_SIMD
    for (int k = 0; k < DYN_NPT; ++k) {
        z[k] = dyn_standard_normal(m.seed, instance, DYN_STREAM_NEURON, (dyn_u32)p,
                                   (dyn_u32)dyn_neuron(tid, k));
    }
#endif
    if (m.shared) {
        DYN_SIMD
        for (int k = 0; k < DYN_NPT; ++k) {
            const double zc = dyn_standard_normal(m.seed, instance, DYN_STREAM_CORE, (dyn_u32)p,
                                                  (dyn_u32)core_map[dyn_neuron(tid, k)]);
            z[k] = m.shared_a * z[k] + m.shared_b * zc;
        }
    }
    if (m.lognormal) {
        DYN_SIMD
        for (int k = 0; k < DYN_NPT; ++k) {
            value[k] = row[dyn_neuron(tid, k)] *
                       (float)dyn_exact_exp(m.sigma * z[k] - m.half_sigma_sq);
        }
    } else {
        DYN_SIMD
        for (int k = 0; k < DYN_NPT; ++k) {
            const float x = row[dyn_neuron(tid, k)];
            value[k] = x + (m.sigma_f * (float)z[k]) * x;
        }
    }
    int nonphysical = 0;
    DYN_SIMD_REDUCE(+ : nonphysical)
    for (int k = 0; k < DYN_NPT; ++k) {
        const float x = row[dyn_neuron(tid, k)];
        const int bad = x > 0.0f ? (value[k] <= 0.0f ? 1 : 0) : 0;
        value[k] = (m.clip && bad) ? x * 0.01f : value[k];
        nonphysical += dyn_valid(tid, k) ? bad : 0;
    }
    return nonphysical;
}

enum { DYN_SPARSE_REC = 1, DYN_SPARSE_IN = 2 };  // the matrices given as sparse rows

// Per-variant mismatch settings (runner/kernel/kernel_calls.py: variant_int, variant_real rows).
enum { VI_MASK, VI_LOGNORMAL, VI_CLIP, VI_SHARED, DYN_VARIANT_INTS };
enum { VR_SIGMA, VR_HALF_SIGMA_SQ, VR_SHARED_A, VR_SHARED_B, VR_ISCALE, DYN_VARIANT_REALS };

DYN_FN dyn_mismatch dyn_variant_mismatch(dyn_u64 seed, const int* __restrict__ vi,
                                         const double* __restrict__ vr) {
    dyn_mismatch m;
    m.seed = seed;
    m.mask = (dyn_u32)vi[VI_MASK];
    m.lognormal = vi[VI_LOGNORMAL];
    m.clip = vi[VI_CLIP];
    m.shared = vi[VI_SHARED];
    m.sigma = vr[VR_SIGMA];
    m.sigma_f = (float)vr[VR_SIGMA];
    m.half_sigma_sq = vr[VR_HALF_SIGMA_SQ];
    m.shared_a = vr[VR_SHARED_A];
    m.shared_b = vr[VR_SHARED_B];
    return m;
}

// Synaptic mismatch (runner.physics.mismatch: sample_base_weights), compiled only where a
// batch has it: DYN_SYN_BITS base weights Iw_k per neuron, drawn like parameters 24 + k
// (their nominal rows follow the 24 in `nominal`, their bits VI_MASK's bits 24 + k). The
// weights are then bit planes, row (source, k) = sign * bit_k(mask) of the source's
// connections (int8, (sources, DYN_SYN_BITS, N); sparse rows hold sign * mask), and a
// neuron's drive sums, per base weight k,
// S_k = sum of sign * bit_k(mask) * count over last step's spikes (ascending) and this step's
// input events (in order), then drive = sum_k (Iw_k / Iscale) * S_k in k order.
#ifndef DYN_SYN_BITS
#define DYN_SYN_BITS 0
#endif
#if DYN_SYN_BITS < 0 || DYN_N_PARAMETERS + DYN_SYN_BITS > 32
#error "DYN_SYN_BITS must be 0 to 32 - DYN_N_PARAMETERS (VI_MASK has 32 bits)"
#endif
#define DYN_NOMINAL_ROWS (DYN_N_PARAMETERS + DYN_SYN_BITS)

// Variant v's nominal parameters (and base weights), a slice of the (P, rows, N) array.
DYN_FN const float* dyn_variant_nominal(const float* nominal, int v) {
    return nominal + (dyn_i64)v * DYN_NOMINAL_ROWS * DYN_N;
}

#if DYN_SYN_BITS
// S_k += sign * bit_k(mask) * c for the owned neurons: `rows` are the DYN_SYN_BITS rows of
// one source, sign * bit_k(mask) in {-1, 0, 1} for k = 0, 1, ... (its bit planes).
DYN_FN void dyn_add_bits(float (&partial)[DYN_SYN_BITS][DYN_ROW], const dyn_weight* rows,
                         float c, int tid) {
    DYN_UNROLL
    for (int bit = 0; bit < DYN_SYN_BITS; ++bit) {
        const dyn_weight* row = rows + bit * DYN_N;
        DYN_SIMD
        for (int k = 0; k < DYN_NPT; ++k) {
            if (dyn_valid(tid, k)) partial[bit][k] += (float)row[k * DYN_NTHREADS] * c;
        }
    }
}

// One source's S_k through the rows of `rows` (its bit planes): as sparse rows of sign * mask
// (one-thread host build, the matrices `sparse` names) for a finite count, else dense.
DYN_FN void dyn_add_source_bits(float (&partial)[DYN_SYN_BITS][DYN_ROW], const dyn_weight* rows,
                                bool as_sparse, const dyn_i64* __restrict__ sparse_ptr,
                                const int* __restrict__ sparse_post,
                                const float* __restrict__ sparse_weight, int sparse_row, float c,
                                int tid) {
    if (!DYN_SPARSE_ROWS || !as_sparse || !(fabsf(c) <= DYN_FLT_MAX)) {
        dyn_add_bits(partial, rows, c, tid);
        return;
    }
    for (dyn_i64 j = sparse_ptr[sparse_row]; j < sparse_ptr[sparse_row + 1]; ++j) {
        const int w = (int)sparse_weight[j], n = sparse_post[j];
        const int magnitude = w < 0 ? -w : w;
        const float signed_c = w < 0 ? -c : c;
        for (int bit = 0; bit < DYN_SYN_BITS; ++bit) {
            if ((magnitude >> bit) & 1) partial[bit][n] += signed_c;
        }
    }
}
#endif

// 1 - exp(-x) and exp(-x) of the time-invariant factors, with exp rounded once to float:
// the charge factors' cancellation turns an ulp of exp into 1e-4 of isyn (as the reference).
DYN_FN float dyn_exp_rounded(float x) { return (float)dyn_exact_exp((double)x); }

// Sum (or min) of one int per thread, valid in thread 0: a shuffle scan over each warp's
// lanes, then thread 0 over the warps' totals, so that `scratch` is DYN_NWARPS ints (shared
// memory is left to the factors). Barrier before reuse of `scratch`.
DYN_FN int dyn_block_reduce(int* scratch, int value, bool take_min) {
#if DYN_NTHREADS == 1
    (void)scratch;
    (void)take_min;
    return value;
#else
    auto combine = [take_min](int a, int b) { return take_min ? (b < a ? b : a) : a + b; };
    const int lane = threadIdx.x % DYN_WARP;
    DYN_UNROLL
    for (int d = 1; d < DYN_WARP; d <<= 1) {
        const int below = __shfl_up_sync(DYN_FULL_MASK, value, d);
        value = lane >= d ? combine(value, below) : value;
    }
    if (lane == DYN_WARP - 1) scratch[threadIdx.x / DYN_WARP] = value;
    __syncthreads();
    int result = scratch[0];
    if (threadIdx.x == 0) {
        for (int w = 1; w < DYN_NWARPS; ++w) result = combine(result, scratch[w]);
    }
    __syncthreads();
    return result;
#endif
}

// The mismatched parameters of `n_instances` instances: out (B, 24, N), nonphysical (B,).
extern "C" __global__ void DYN_LAUNCH_BOUNDS
dynapsim_draw(const float* __restrict__ nominal, const int* __restrict__ core_map,
              const dyn_u64* __restrict__ instances, const int* __restrict__ instance_variant,
              int n_instances, dyn_u64 seed, const int* __restrict__ variant_int,
              const double* __restrict__ variant_real, float* __restrict__ out,
              dyn_i64* __restrict__ nonphysical) {
    const int b = blockIdx.x;
    if (b >= n_instances) return;
    __shared__ int s_reduce[DYN_NWARPS];
    const int tid = threadIdx.x;
    const int v = instance_variant[b];
    const dyn_mismatch m = dyn_variant_mismatch(seed, variant_int + v * DYN_VARIANT_INTS,
                                                variant_real + v * DYN_VARIANT_REALS);
    int bad = 0;
    DYN_UNROLL
    for (int p = 0; p < DYN_N_PARAMETERS; ++p) {
        float value[DYN_NPT];
        bad += dyn_draw(value, p, dyn_variant_nominal(nominal, v), core_map, instances[b], m, tid);
        float* row = out + ((dyn_i64)b * DYN_N_PARAMETERS + p) * DYN_N;
        DYN_UNROLL
        for (int k = 0; k < DYN_NPT; ++k) {
            if (dyn_valid(tid, k)) row[dyn_neuron(tid, k)] = value[k];
        }
    }
    const int total = dyn_block_reduce(s_reduce, bad, false);
    if (tid == 0) nonphysical[b] = total;
}

// Integrate `n_instances` instances for `n_steps` steps; one block per instance.
// Inputs: nominal (P, 24, N) of P variants ((P, 24 + DYN_SYN_BITS, N) with synaptic
// mismatch), instance b is variant instance_variant[b] with
// mismatch settings and Iscale in row v of variant_int/variant_real; w_in (C, N) and
// w_rec (N, N) [pre, post] of dyn_weight when has_*, their largest |weight| max_abs_* when
// integer (the one-thread host build's exact int16 drive; 0 otherwise), and as sparse rows
// (float weights) where `sparse` says so (DYN_SPARSE_REC | DYN_SPARSE_IN; one-thread host
// builds only, which then read those dense rows only for a non-finite count); input events
// of stream s at step t:
// ev_*[step_ptr[s*(T+1)+t] : step_ptr[s*(T+1)+t+1]];
// record_slot[b] >= 0 selects the instances whose raster (R, T, N) and traces (R, 4, T, N)
// are written; the raster holds uint8 spike counts (saturating at 255), not single bits,
// because a step can carry several spikes. Reductions as runner/kernel/reductions.py; bin_width >= 1.
extern "C" __global__ void DYN_LAUNCH_BOUNDS dynapsim_run(
    const float* __restrict__ nominal, const int* __restrict__ core_map,
    const dyn_weight* __restrict__ w_in, int has_w_in, const dyn_weight* __restrict__ w_rec,
    int has_w_rec, int max_abs_in, int max_abs_rec, int sparse,
    const dyn_i64* __restrict__ sparse_ptr, const int* __restrict__ sparse_post,
    const float* __restrict__ sparse_weight,
    const dyn_i64* __restrict__ step_ptr, const int* __restrict__ ev_channel,
    const float* __restrict__ ev_value, const int* __restrict__ instance_stream,
    const dyn_u64* __restrict__ instances, const int* __restrict__ instance_variant,
    const int* __restrict__ record_slot, int n_instances, int n_steps, int bin_width, int n_bins,
    float dt, dyn_u64 seed, const int* __restrict__ variant_int,
    const double* __restrict__ variant_real, dyn_i64* __restrict__ spike_count,
    int* __restrict__ first_spike, int* __restrict__ last_spike, int* __restrict__ spiking_steps,
    double* __restrict__ isi_sumsq, int* __restrict__ binned, int* __restrict__ nonfinite_step,
    dyn_i64* __restrict__ nonphysical, unsigned char* __restrict__ raster,
    float* __restrict__ traces) {
    const int b = blockIdx.x;
    if (b >= n_instances) return;
    const int tid = threadIdx.x;
    // the spike list of the last step, ascending: neurons s_idx[e] with counts s_cnt[e], then
    // the factors held in shared memory; dynamic shared memory, 8 N + 4 DYN_SHARED_FACTORS
    // DYN_SLOTS bytes (runner/kernel/kernel_calls.py: run_shared_bytes)
    DYN_DYNAMIC_SHARED(int, s_spikes, 2 * DYN_N + DYN_SHARED_FACTORS * DYN_SLOTS);
    int* const s_idx = s_spikes;
    float* const s_cnt = (float*)(s_spikes + DYN_N);
    float* const s_factors = (float*)(s_spikes + 2 * DYN_N);
#if DYN_NTHREADS > 1
    __shared__ int s_warp_count[DYN_NPT][DYN_NWARPS];  // spiking neurons per (slot, warp)
#endif
    __shared__ int s_reduce[2][DYN_NWARPS];

    // --- per instance, once: parameters and the time-invariant factors (reference order)
    const int v = instance_variant[b];
    const float* nominal_v = dyn_variant_nominal(nominal, v);
    const dyn_mismatch m = dyn_variant_mismatch(seed, variant_int + v * DYN_VARIANT_INTS,
                                                variant_real + v * DYN_VARIANT_REALS);
    const float iscale = (float)variant_real[v * DYN_VARIANT_REALS + VR_ISCALE];
    int bad_samples = 0;
    auto draw = [&](int p, auto& value) {
        bad_samples += dyn_draw(value, p, nominal_v, core_map, instances[b], m, tid);
    };
    DYN_FACTOR(io, F_IO);
    DYN_FACTOR(ut, F_UT);
    DYN_FACTOR(ut_kappa, F_UT_KAPPA);
    DYN_FACTOR(kappa_prime, F_KAPPA_PRIME);
    float vth[DYN_ROW];
    draw(P_IO, io);
    draw(P_UT, ut);
    draw(P_VTH, vth);
    {
        float kappa_n[DYN_ROW], kappa_p[DYN_ROW];
        draw(P_KAPPA_N, kappa_n);
        draw(P_KAPPA_P, kappa_p);
        DYN_SIMD
        for (int k = 0; k < DYN_NPT; ++k) {
            const float kappa = (kappa_n[k] + kappa_p[k]) / 2.0f;
            ut_kappa[k] = ut[k] / kappa;
            kappa_prime[k] = (kappa * kappa) / (kappa + 1.0f);
        }
    }
    // the synapse's and the AHP's decay, charge and gain factors, alike from their parameters
    auto filter = [&](int p_itau, int p_igain, int p_c, int p_ipulse, int p_c_pulse,
                      auto& dis, auto& chg, auto& gain) {
        float itau[DYN_ROW], x[DYN_ROW], y[DYN_ROW];
        draw(p_itau, itau);
        draw(p_igain, x);
        DYN_SIMD
        for (int k = 0; k < DYN_NPT; ++k) {
            itau[k] = dyn_max(itau[k], io[k]);
            gain[k] = dyn_max(x[k], io[k]) / itau[k];
        }
        draw(p_c, x);
        DYN_SIMD
        for (int k = 0; k < DYN_NPT; ++k) {
            const float tau = (ut_kappa[k] * x[k]) / itau[k];
            dis[k] = dyn_exp_rounded(-dt / tau);
            itau[k] = tau;  // from here on: tau
        }
        draw(p_c_pulse, x);
        draw(p_ipulse, y);
        DYN_SIMD
        for (int k = 0; k < DYN_NPT; ++k) {
            const float t_pulse = (vth[k] * x[k]) / y[k];
            chg[k] = 1.0f - dyn_exp_rounded(-t_pulse / itau[k]);
        }
    };
    DYN_FACTOR(syn_dis, F_SYN_DIS);
    DYN_FACTOR(syn_chg, F_SYN_CHG);
    DYN_FACTOR(syn_ratio, F_SYN_RATIO);
    DYN_FACTOR(ahp_dis, F_AHP_DIS);
    DYN_FACTOR(ahp_chg, F_AHP_CHG);
    DYN_FACTOR(ahp_ratio, F_AHP_RATIO);
    filter(P_ITAU_SYN, P_IGAIN_SYN, P_C_SYN, P_IPULSE, P_C_PULSE, syn_dis, syn_chg, syn_ratio);
    filter(P_ITAU_AHP, P_IGAIN_AHP, P_C_AHP, P_IPULSE_AHP, P_C_PULSE_AHP, ahp_dis, ahp_chg,
           ahp_ratio);
    DYN_FACTOR(itau_mem, F_ITAU_MEM);
    DYN_FACTOR(igain_mem, F_IGAIN_MEM);
    DYN_FACTOR(mem_ratio, F_MEM_RATIO);
    DYN_FACTOR(tau_mem_num, F_TAU_MEM_NUM);
    DYN_FACTOR(t_ref, F_T_REF);
    DYN_FACTOR(idc, F_IDC);
    DYN_FACTOR(ispkthr, F_ISPKTHR);
    DYN_FACTOR(iw_ahp, F_IW_AHP);
    draw(P_ITAU_MEM, itau_mem);
    draw(P_IGAIN_MEM, igain_mem);
    draw(P_C_MEM, tau_mem_num);
    {
        float c_ref[DYN_ROW];
        draw(P_C_REF, c_ref);
        draw(P_IREF, t_ref);
        DYN_SIMD
        for (int k = 0; k < DYN_NPT; ++k) {
            itau_mem[k] = dyn_max(itau_mem[k], io[k]);
            igain_mem[k] = dyn_max(igain_mem[k], io[k]);
            mem_ratio[k] = igain_mem[k] / itau_mem[k];
            tau_mem_num[k] = ut_kappa[k] * tau_mem_num[k];
            t_ref[k] = (vth[k] * c_ref[k]) / t_ref[k];
        }
    }
    draw(P_IDC, idc);
    draw(P_ISPKTHR, ispkthr);
    draw(P_IW_AHP, iw_ahp);
    {
        float if_nmda[DYN_ROW];  // no part of the model, but its non-physical samples count
        draw(P_IF_NMDA, if_nmda);
    }
#if DYN_SYN_BITS
    float syn_w[DYN_SYN_BITS][DYN_ROW];  // Iw_k / Iscale of each owned neuron
    DYN_UNROLL
    for (int bit = 0; bit < DYN_SYN_BITS; ++bit) {
        draw(DYN_N_PARAMETERS + bit, syn_w[bit]);
        DYN_SIMD
        for (int k = 0; k < DYN_NPT; ++k) syn_w[bit][k] = syn_w[bit][k] / iscale;
    }
#endif

    // --- state (initial currents: the nominal Io, as Rockpool)
    float isyn[DYN_ROW], iahp[DYN_ROW], imem[DYN_ROW], vmem[DYN_ROW], spikes[DYN_ROW];
    float timer[DYN_ROW], drive[DYN_ROW], ratio[DYN_ROW], ifb[DYN_ROW], log_arg[DYN_ROW];
    // imem above threshold this step (valid neurons), padded to whole 64-byte words
    unsigned char over[(DYN_NPT + 63) / 64 * 64];
    memset(over, 0, sizeof over);
    DYN_SIMD
    for (int k = 0; k < DYN_NPT; ++k) {
        const float io0 = nominal_v[P_IO * DYN_N + dyn_neuron(tid, k)];
        isyn[k] = io0;
        iahp[k] = io0;
        imem[k] = io0;
        vmem[k] = 0.0f;
        spikes[k] = 0.0f;
        timer[k] = 0.0f;
    }
    // The per-neuron reductions accumulate in the outputs themselves, which only this thread
    // touches: updated only when a neuron fires, they cost no registers (a GPU thread's
    // register file holds the state of its neurons, not their statistics too).
    const dyn_i64 at = (dyn_i64)b * DYN_N;  // this instance's row of the reductions
    DYN_UNROLL
    for (int k = 0; k < DYN_NPT; ++k) {
        if (!dyn_valid(tid, k)) continue;
        const int n = dyn_neuron(tid, k);
        spike_count[at + n] = 0;
        first_spike[at + n] = -1;
        last_spike[at + n] = -1;
        spiking_steps[at + n] = 0;
        isi_sumsq[at + n] = 0.0;
        for (int i = 0; i < n_bins; ++i) binned[(at * n_bins + (dyn_i64)i * DYN_N) + n] = 0;
    }

    const dyn_i64* steps = step_ptr + (dyn_i64)instance_stream[b] * (n_steps + 1);
    const int slot = record_slot[b];
    int n_spiking = 0;  // length of the shared spike list (same in every thread)
    int first_bad = n_steps;
    int nan_spikes = 0;  // a NaN spike count last step: the states are NaN from this one

    for (int t = 0; t < n_steps; ++t) {
        // 1. synaptic drive: last step's spikes through W_rec rows, then this step's input
        //    (one-thread host build, host_vector.h: dense rows of neurons below
        //    DYN_DRIVE_BLOCKED in register blocks, the loops the rest; sparse rows for all)
#if DYN_SYN_BITS
        {
            float partial[DYN_SYN_BITS][DYN_ROW];
            DYN_UNROLL
            for (int bit = 0; bit < DYN_SYN_BITS; ++bit) {
                DYN_SIMD
                for (int k = 0; k < DYN_NPT; ++k) partial[bit][k] = 0.0f;
            }
            if (has_w_rec) {
                for (int e = 0; e < n_spiking; ++e) {
                    dyn_add_source_bits(
                        partial, w_rec + (dyn_i64)s_idx[e] * DYN_SYN_BITS * DYN_N + tid,
                        sparse & DYN_SPARSE_REC, sparse_ptr, sparse_post, sparse_weight,
                        s_idx[e], s_cnt[e], tid);
                }
            }
            if (has_w_in) {
                for (dyn_i64 e = steps[t]; e < steps[t + 1]; ++e) {
                    dyn_add_source_bits(
                        partial, w_in + (dyn_i64)ev_channel[e] * DYN_SYN_BITS * DYN_N + tid,
                        sparse & DYN_SPARSE_IN, sparse_ptr, sparse_post, sparse_weight,
                        DYN_N + ev_channel[e], ev_value[e], tid);
                }
            }
            DYN_SIMD
            for (int k = 0; k < DYN_NPT; ++k) drive[k] = syn_w[0][k] * partial[0][k];
            DYN_UNROLL
            for (int bit = 1; bit < DYN_SYN_BITS; ++bit) {
                DYN_SIMD
                for (int k = 0; k < DYN_NPT; ++k) {
                    drive[k] = drive[k] + syn_w[bit][k] * partial[bit][k];
                }
            }
            if (!has_w_in) {  // no W_in: an event's channel is a neuron, its value the drive
                for (dyn_i64 e = steps[t]; e < steps[t + 1]; ++e) {
                    const int channel = ev_channel[e];
                    if (channel % DYN_NTHREADS != tid) continue;
                    const int local = channel / DYN_NTHREADS;
                    DYN_UNROLL
                    for (int k = 0; k < DYN_NPT; ++k) {
                        if (local == k) drive[k] += ev_value[e];
                    }
                }
            }
        }
#else
        constexpr int k_loop = DYN_DRIVE_BLOCKED;
        const bool rec_sparse = DYN_SPARSE_ROWS && has_w_rec && (sparse & DYN_SPARSE_REC);
        const bool in_sparse = DYN_SPARSE_ROWS && has_w_in && (sparse & DYN_SPARSE_IN);
        DYN_SIMD
        for (int k = rec_sparse ? 0 : k_loop; k < DYN_NPT; ++k) drive[k] = 0.0f;
#if DYN_SPARSE_ROWS
        if (rec_sparse) {
            for (int e = 0; e < n_spiking; ++e) {
                dyn_add_sparse_row(drive, sparse_ptr, sparse_post, sparse_weight, s_idx[e],
                                   s_cnt[e]);
            }
        }
#endif
#if DYN_DRIVE_BLOCKED
        dyn_drive_blocks(drive, rec_sparse, has_w_rec && !rec_sparse ? w_rec : nullptr, s_idx,
                         s_cnt, n_spiking, has_w_in && !in_sparse ? w_in : nullptr, ev_channel,
                         ev_value, steps[t], steps[t + 1], max_abs_rec, max_abs_in);
#endif
        if (has_w_rec && !rec_sparse && k_loop < DYN_NPT) {
            for (int e = 0; e < n_spiking; ++e) {
                const dyn_weight* row = w_rec + (dyn_i64)s_idx[e] * DYN_N + tid;
                const float c = s_cnt[e];
                DYN_SIMD
                for (int k = k_loop; k < DYN_NPT; ++k) {
                    if (dyn_valid(tid, k)) drive[k] += (float)row[k * DYN_NTHREADS] * c;
                }
            }
        }
        for (dyn_i64 e = steps[t]; e < steps[t + 1]; ++e) {
            const int channel = ev_channel[e];
            const float x = ev_value[e];
            if (in_sparse) {
#if DYN_SPARSE_ROWS
                dyn_add_sparse_row(drive, sparse_ptr, sparse_post, sparse_weight,
                                   DYN_N + channel, x);
#endif
            } else if (has_w_in) {
                if (k_loop == DYN_NPT) continue;
                const dyn_weight* row = w_in + (dyn_i64)channel * DYN_N + tid;
                DYN_SIMD
                for (int k = k_loop; k < DYN_NPT; ++k) {
                    if (dyn_valid(tid, k)) drive[k] += (float)row[k * DYN_NTHREADS] * x;
                }
            } else if (channel % DYN_NTHREADS == tid) {
                const int local = channel / DYN_NTHREADS;
#if DYN_DYNAMIC_INDEX
                drive[local] += x;
#else
                DYN_UNROLL
                for (int k = 0; k < DYN_NPT; ++k) {
                    if (local == k) drive[k] += x;
                }
#endif
            }
        }

#endif

        // 2. the model step (README: the model), up to the spike threshold test. exp and log get
        //    loops of their own: on the host each is a vector call that spills every live
        //    register, and the divisions pipeline better without them.
        DYN_SIMD
        for (int k = 0; k < DYN_NPT; ++k) {
            ifb[k] = io[k] * dyn_expf(kappa_prime[k] * (vmem[k] / ut[k]));  // previous vmem
        }
        int any_fired = 0, bad = nan_spikes, nan_now = 0;
        DYN_SIMD_REDUCE(| : any_fired, bad, nan_now)
        for (int k = 0; k < DYN_NPT; ++k) {
            const float iws = drive[k] * iscale;
            const float isyn_inf = dyn_max(syn_ratio[k] * iws, io[k]);
            isyn[k] = syn_dis[k] * isyn[k] + syn_chg[k] * isyn_inf;
            const float iahp_inf = ahp_ratio[k] * (iw_ahp[k] * spikes[k]);
            iahp[k] = dyn_max(ahp_dis[k] * iahp[k] + ahp_chg[k] * iahp_inf, io[k]);
            const float ileak = itau_mem[k] + iahp[k];
            float iin = isyn[k] - ileak + idc[k];
            iin = dyn_max(timer[k] > 0.0f ? 0.0f : iin, io[k]);
            const float imem_inf = mem_ratio[k] * (iin - ileak);
            const float f_imem = (ifb[k] / ileak) * (imem[k] + igain_mem[k]);
            const float tau_mem = tau_mem_num[k] / ileak;
            const float d_imem = (imem[k] / (tau_mem * (imem[k] + igain_mem[k]))) *
                                 (imem_inf + f_imem - imem[k] * (1.0f + iahp[k] / itau_mem[k]));
            const float imem_new = dyn_max(imem[k] + d_imem * dt, io[k]);
            log_arg[k] = imem_new / io[k];  // of vmem, before the reset
            ratio[k] = imem_new / ispkthr[k];
            const bool finite = fabsf(isyn[k]) <= DYN_FLT_MAX && fabsf(iahp[k]) <= DYN_FLT_MAX &&
                                fabsf(imem_new) <= DYN_FLT_MAX;
            bad |= (!finite && dyn_valid(tid, k)) ? 1 : 0;
            // ratio < 0 (a non-physical Ispkthr or Io): the model's count ceil(log(ratio)) is
            // NaN, which makes the states NaN from the next step: flagged then, as there
            nan_now |= (ratio[k] < 0.0f && dyn_valid(tid, k)) ? 1 : 0;
            // log(ratio) > 0 only where ratio > 1: flag those and reset them here, branch-free;
            // their spike counts follow in step 3
            const bool fired = ratio[k] > 1.0f;
            spikes[k] = fired ? 1.0f : 0.0f;
            imem[k] = fired ? io[k] : imem_new;
            timer[k] = fired ? t_ref[k] : dyn_max(timer[k] - dt, 0.0f);
            any_fired |= (fired && dyn_valid(tid, k)) ? 1 : 0;
        }
        // the flags of step 3 (bit 0: fired; bit 1: fired with ratio > 2.5, a count that needs
        // the log) in a loop of their own: bytes in the loop above would make the host build
        // vectorise it 64 lanes (4 vectors) wide, and spill its registers
        DYN_SIMD
        for (int k = 0; k < DYN_NPT; ++k) {
            over[k] = (ratio[k] > 1.0f && dyn_valid(tid, k)) ? (ratio[k] > 2.5f ? 3 : 1) : 0;
        }
        DYN_SIMD_REDUCE(| : bad)
        for (int k = 0; k < DYN_NPT; ++k) {
            vmem[k] = ut_kappa[k] * dyn_logf(log_arg[k]);
            bad |= (!(fabsf(vmem[k]) <= DYN_FLT_MAX) && dyn_valid(tid, k)) ? 1 : 0;
        }
        if (bad && first_bad == n_steps) first_bad = t;
        nan_spikes = nan_now;

        // 3. spike counts and the per-neuron reductions of the flagged neurons
        int n_local = 0;
        int* const bin = binned + (at * n_bins + (dyn_i64)(t / bin_width) * DYN_N);  // its bin
        // ceil(log(ratio)) is 1 for 1 < ratio <= 2.5 (log 2.5 = 0.92): the logf only above
        auto count = [&](int k) { return ratio[k] <= 2.5f ? 1.0f : ceilf(dyn_logf(ratio[k])); };
        auto record = [&](int k) {  // neuron k fired spikes[k] spikes
            const int c = (int)(spikes[k] < DYN_MAX_COUNT ? spikes[k] : DYN_MAX_COUNT);
            const int n = k * DYN_NTHREADS + tid;
            spike_count[at + n] += c;
            bin[n] += c;
            spiking_steps[at + n] += 1;
            if (last_spike[at + n] >= 0) {
                const double interval = (double)(t - last_spike[at + n]);
                isi_sumsq[at + n] += interval * interval;
            } else {
                first_spike[at + n] = t;
            }
            last_spike[at + n] = t;
#if DYN_NTHREADS == 1
            s_idx[n_local] = k;  // a lone thread's list is its own, in order
            s_cnt[n_local] = spikes[k];
#endif
            ++n_local;
        };
        if (any_fired) {
#ifdef DYN_HOST_VECTORS
            dyn_count_and_record(t, over, spikes, ratio, count, record, spike_count + at, bin,
                                 spiking_steps + at, isi_sumsq + at, first_spike + at,
                                 last_spike + at, s_idx, s_cnt, n_local);
#else
            DYN_UNROLL
            for (int k = 0; k < DYN_NPT; ++k) {
                if (over[k]) {
                    spikes[k] = count(k);
                    record(k);
                }
            }
#endif
        }

        // 4. spike exchange. Neuron order is slot-major (k, then warp, then lane): each
        //    warp ballots its spiking lanes per slot, one barrier publishes the per-warp
        //    counts, every warp scans them with shuffles to its offsets, each spiking neuron
        //    writes itself at offset + its rank among the warp's lanes, a second barrier
        //    publishes the list. (Reads of the old list all precede the first barrier.)
#if DYN_NTHREADS == 1
        n_spiking = n_local;
#else
        {
            const int lane = tid % DYN_WARP, warp = tid / DYN_WARP;
            const dyn_u32 lanes_below = (1u << lane) - 1u;  // lane < 32
            dyn_u32 ballot[DYN_NPT];
            DYN_UNROLL
            for (int k = 0; k < DYN_NPT; ++k) {
                ballot[k] = __ballot_sync(DYN_FULL_MASK, over[k]);
                if (lane == 0) s_warp_count[k][warp] = __popc(ballot[k]);
            }
            __syncthreads();
            int written = 0;  // spiking neurons in slots before k
            DYN_UNROLL
            for (int k = 0; k < DYN_NPT; ++k) {
                const int count_k = lane < DYN_NWARPS ? s_warp_count[k][lane] : 0;
                int inclusive = count_k;  // Hillis-Steele over the lanes = warps
                DYN_UNROLL
                for (int d = 1; d < DYN_WARP; d <<= 1) {
                    const int below = __shfl_up_sync(DYN_FULL_MASK, inclusive, d);
                    inclusive += lane >= d ? below : 0;
                }
                const int warps_before = __shfl_sync(DYN_FULL_MASK, inclusive - count_k, warp);
                const int slot_total = __shfl_sync(DYN_FULL_MASK, inclusive, DYN_WARP - 1);
                if (over[k]) {
                    const int at = written + warps_before + __popc(ballot[k] & lanes_below);
                    s_idx[at] = k * DYN_NTHREADS + tid;
                    s_cnt[at] = spikes[k];
                }
                written += slot_total;
            }
            n_spiking = written;
            __syncthreads();
        }
#endif

        // 5. the optional full record
        if (slot >= 0) {
            const dyn_i64 row = ((dyn_i64)slot * n_steps + t) * DYN_N;
            const dyn_i64 plane = (dyn_i64)n_steps * DYN_N;
            float* trace = traces + (dyn_i64)slot * DYN_N_RECORDS * plane + (dyn_i64)t * DYN_N;
            DYN_UNROLL
            for (int k = 0; k < DYN_NPT; ++k) {
                if (!dyn_valid(tid, k)) continue;
                const int n = dyn_neuron(tid, k);
                raster[row + n] = (unsigned char)(spikes[k] < 255.0f ? spikes[k] : 255.0f);
                trace[R_ISYN * plane + n] = isyn[k];
                trace[R_IAHP * plane + n] = iahp[k];
                trace[R_IMEM * plane + n] = imem[k];
                trace[R_VMEM * plane + n] = vmem[k];
            }
        }
    }

    // --- per-instance flags through a block reduction
    const int block_first_bad = dyn_block_reduce(s_reduce[0], first_bad, true);
    const int block_bad_samples = dyn_block_reduce(s_reduce[1], bad_samples, false);
    if (tid == 0) {
        nonfinite_step[b] = block_first_bad == n_steps ? -1 : block_first_bad;
        nonphysical[b] = block_bad_samples;
    }
}
