// The vector paths of the one-thread host build (DYN_NTHREADS == 1, one thread owning every
// neuron): kernels/dynapsim.cu includes this header where host.cpp names it as
// DYN_HOST_VECTORS, an #include through a macro that the GPU source (runner/kernel/
// kernel_calls.py: kernel_source) does not inline, so NVRTC never sees it. Its padded
// per-neuron arrays (DYN_ROW), the mismatch draws' Philox words 4 counters a vector
// (dyn_neuron_words), the register-blocked and int16 drive (DYN_DRIVE_BLOCKED), sparse rows
// (DYN_SPARSE_ROWS) and step 3 by flag words and vector passes (dyn_count_and_record): the
// same operations as the kernel's loops, so the same bits.
#pragma once

#if DYN_NTHREADS != 1
#error "host_vector.h is the one-thread host build's (DYN_NTHREADS == 1)"
#endif
#if defined(__AVX2__)
#include <immintrin.h>
#endif

// Length of a thread's per-neuron arrays (state, factors), padded by a cache line: at
// N = 1024 the unpadded 4 KiB arrays all sit at the same offset within a 4 KiB page, and the
// step's loads and stores falsely alias (measured: N = 1024 E/I 1.4e8 -> 1.7e8
// neuron-steps/s on one thread; N = 256 unchanged).
#define DYN_ROW (DYN_NPT + 16)

// The vectors of the drive: as wide as the target's registers (DYN_LANES floats: 16 with
// AVX-512, 8 with AVX2, 4 else), so that GCC never splits one into pieces and the register
// blocks below are sized by what the register file holds.
#if defined(__AVX512F__)
#define DYN_LANES 16
#elif defined(__AVX2__)
#define DYN_LANES 8
#else
#define DYN_LANES 4
#endif
typedef float dyn_vf __attribute__((vector_size(4 * DYN_LANES)));
typedef int dyn_vi32 __attribute__((vector_size(4 * DYN_LANES)));
typedef dyn_weight dyn_vw __attribute__((vector_size(DYN_LANES * sizeof(dyn_weight))));

// The N(0, 1) draws z[k] of parameter `parameter` of neurons k < DYN_NPT (the neuron stream),
// as dyn_standard_normal: the Philox words 4 counters a vector, each 32 x 32 -> 64-bit
// product one vpmuludq (GCC's generic vector code multiplies 64-bit lanes by a constant
// through a dozen shifts and adds), then Box-Muller's radius and cosine as passes of their
// own, whose short dependency chains pipeline (in one loop, a chain of ~100 dependent
// operations ran one vector at a time): the draws take 1.8 times less time on one core of an
// AVX2 machine.
DYN_FN void dyn_neuron_normals(dyn_u64 seed, dyn_u64 instance, dyn_u32 parameter,
                               double* __restrict__ z) {
    dyn_word x0[DYN_NPT], x1[DYN_NPT];
    int k = 0;
#if defined(__AVX2__)
    typedef long long v4i64 __attribute__((vector_size(32)));
    const v4i64 low32 = {0xFFFFFFFFll, 0xFFFFFFFFll, 0xFFFFFFFFll, 0xFFFFFFFFll};
    const __m256i mul0 = _mm256_set1_epi64x(0xD2511F53ll), mul1 = _mm256_set1_epi64x(0xCD9E8D57ll);
    for (; k + 4 <= DYN_NPT; k += 4) {
        v4i64 c0 = {k, k + 1, k + 2, k + 3};
        v4i64 c1 = (v4i64){} + (long long)(parameter + 32u * DYN_STREAM_NEURON);
        v4i64 c2 = (v4i64){} + (long long)(dyn_u32)instance;
        v4i64 c3 = (v4i64){} + (long long)(instance >> 32);
        dyn_u32 k0 = (dyn_u32)seed, k1 = (dyn_u32)(seed >> 32);
        for (int round = 0; round < 10; ++round) {
            if (round) {
                k0 += 0x9E3779B9u;
                k1 += 0xBB67AE85u;
            }
            const v4i64 p0 = (v4i64)_mm256_mul_epu32((__m256i)c0, mul0);
            const v4i64 p1 = (v4i64)_mm256_mul_epu32((__m256i)c2, mul1);
            c0 = (v4i64)((__v4du)p1 >> 32) ^ c1 ^ (long long)k0;
            c1 = p1 & low32;
            c2 = (v4i64)((__v4du)p0 >> 32) ^ c3 ^ (long long)k1;
            c3 = p0 & low32;
        }
        memcpy(x0 + k, &c0, sizeof c0);
        memcpy(x1 + k, &c1, sizeof c1);
    }
#endif
    for (; k < DYN_NPT; ++k) {
        const dyn_philox_out w =
            dyn_normal_words(seed, instance, DYN_STREAM_NEURON, parameter, (dyn_u32)k);
        x0[k] = w.x0;
        x1[k] = w.x1;
    }
    DYN_SIMD
    for (int n = 0; n < DYN_NPT; ++n) z[n] = dyn_box_muller_radius(x0[n]);
    DYN_SIMD
    for (int n = 0; n < DYN_NPT; ++n) z[n] = z[n] * dyn_box_muller_cos(x1[n]);
}

// Step 1: the drive of neurons [0, DYN_DRIVE_BLOCKED) in blocks of DYN_DRIVE_VECTORS float
// vectors held in registers over all of a step's rows (W_rec rows of the spiking neurons,
// then W_in rows of the input events), stored once (added `onto` the drive of sparse W_rec
// rows): one load, multiply and add per row vector instead of a load-add-store round trip
// through `drive`. Full blocks, then one block of the remaining whole pairs of vectors; per
// neuron the same products are added in the same order from +0, so the sums are bitwise
// those of the kernel's row-by-row loops, which handle the last neurons. 16 vectors: the
// int16 lanes' block (8 vectors) fills half the register file, 16 zmm or 8 ymm; with AVX2 the
// float rows' block then spills a few registers, which costs less than twice the passes over
// a step's rows (measured, one thread of a 2-core AMD EPYC, AVX2: 8 -> 16 vectors, ~+5 % on
// n256_one_core and ~+10 % on high_rate_multi_spike, float rows no slower).
#ifndef DYN_DRIVE_VECTORS
#define DYN_DRIVE_VECTORS 16
#endif
#define DYN_DRIVE_FULL (DYN_N / (DYN_LANES * DYN_DRIVE_VECTORS) * (DYN_LANES * DYN_DRIVE_VECTORS))
#define DYN_DRIVE_TAIL_VECTORS ((DYN_N - DYN_DRIVE_FULL) / (2 * DYN_LANES) * 2)
#define DYN_DRIVE_BLOCKED (DYN_DRIVE_FULL + DYN_LANES * DYN_DRIVE_TAIL_VECTORS)

// DYN_LANES weights as floats, loaded unaligned; integer ones sign-extended by one
// instruction (GCC's generic conversion of int8/int16 vectors goes lane by lane)
DYN_FN dyn_vf dyn_weights(const dyn_weight* __restrict__ at) {
#if DYN_WEIGHT_BITS == 32
    dyn_vf w;
    memcpy(&w, at, sizeof w);
    return w;
#elif defined(__AVX512F__) && DYN_WEIGHT_BITS == 8
    return (dyn_vf)_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)at)));
#elif defined(__AVX512F__)
    return (dyn_vf)_mm512_cvtepi32_ps(
        _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i*)at)));
#elif defined(__AVX2__) && DYN_WEIGHT_BITS == 8
    return (dyn_vf)_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)at)));
#elif defined(__AVX2__)
    return (dyn_vf)_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i*)at)));
#else
    dyn_vw w;
    memcpy(&w, at, sizeof w);
    return __builtin_convertvector(__builtin_convertvector(w, dyn_vi32), dyn_vf);
#endif
}

// acc[v] += (row[DYN_LANES v ..]) * x for V vectors
template <int V>
DYN_FN void dyn_add_row(dyn_vf (&acc)[V], const dyn_weight* __restrict__ row, float x) {
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) acc[v] += dyn_weights(row + DYN_LANES * v) * x;
}

// Integer weights (int8/int16 rows) and a step whose counts are all integers: every product
// and partial sum of the drive is an integer of magnitude at most the sum of |weight x count|,
// so each float addition is exact and the float sum IS the integer sum (a zero one is +0).
// Where that bound fits int16, the rows are added in 2 DYN_LANES int16 lanes a vector (no
// conversion to float per weight, half the vectors) and the sums converted once: the same
// bits.
#if DYN_WEIGHT_BITS != 32
#define DYN_INTEGER_DRIVE 1
#define DYN_INT16_MAX 32767
typedef short dyn_vi16 __attribute__((vector_size(4 * DYN_LANES)));
typedef dyn_weight dyn_vw2 __attribute__((vector_size(2 * DYN_LANES * sizeof(dyn_weight))));
typedef float dyn_vf2 __attribute__((vector_size(8 * DYN_LANES)));
typedef int dyn_vi32x2 __attribute__((vector_size(8 * DYN_LANES)));

// Whether every count of [begin, end) is an integer and the bound (`*bound`, to which
// |count| x max_abs is added) stays within int16; a NaN or infinite count is no integer.
DYN_FN bool dyn_integer_counts(const float* __restrict__ c, dyn_i64 begin, dyn_i64 end,
                               int max_abs, int* bound) {
    for (dyn_i64 e = begin; e < end; ++e) {
        const float x = c[e];
        if (!(fabsf(x) <= (float)DYN_INT16_MAX && x == floorf(x))) return false;
        *bound += (int)fabsf(x) * max_abs;
        if (*bound > DYN_INT16_MAX) return false;
    }
    return true;
}

// 2 DYN_LANES weights as int16 lanes (one sign-extending load, see dyn_weights)
DYN_FN dyn_vi16 dyn_widen(const dyn_weight* __restrict__ at) {
#if defined(__AVX512BW__) && DYN_WEIGHT_BITS == 8
    return (dyn_vi16)_mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i*)at));
#elif defined(__AVX2__) && !defined(__AVX512F__) && DYN_WEIGHT_BITS == 8
    return (dyn_vi16)_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)at));
#else
    dyn_vw2 w;
    memcpy(&w, at, sizeof w);
    return __builtin_convertvector(w, dyn_vi16);
#endif
}

// acc[v] += (row[2 DYN_LANES v ..]) * x in int16 lanes, for V/2 vectors
template <int V>
DYN_FN void dyn_add_row_i16(dyn_vi16 (&acc)[V / 2], const dyn_weight* __restrict__ row,
                            float x) {
    const short count = (short)x;
#pragma GCC unroll 16
    for (int v = 0; v < V / 2; ++v) acc[v] += dyn_widen(row + 2 * DYN_LANES * v) * count;
}
#else
#define DYN_INTEGER_DRIVE 0
#endif

// The drive of neurons [k0, k0 + DYN_LANES V). `rec_integer`: the W_rec part (dense rows, or the
// sparse rows' drive already in `drive` when `onto`) in int16 lanes (DYN_INTEGER_DRIVE);
// `in_integer`: the W_in rows too, else they are added to its exact float sums as floats.
template <int V>
DYN_FN void dyn_drive_block(int k0, bool rec_integer, bool in_integer, float* __restrict__ drive,
                            bool onto, const dyn_weight* __restrict__ w_rec,
                            const int* __restrict__ idx, const float* __restrict__ cnt,
                            int n_spiking, const dyn_weight* __restrict__ w_in,
                            const int* __restrict__ ev_channel,
                            const float* __restrict__ ev_value, dyn_i64 e_begin,
                            dyn_i64 e_end) {
    dyn_vf acc[V];
#if DYN_INTEGER_DRIVE
    if (rec_integer) {
        dyn_vi16 sums[V / 2];
#pragma GCC unroll 16
        for (int v = 0; v < V / 2; ++v) {
            dyn_vf2 start = {};
            if (onto) memcpy(&start, drive + k0 + 2 * DYN_LANES * v, sizeof start);  // in bound
            sums[v] = __builtin_convertvector(__builtin_convertvector(start, dyn_vi32x2),
                                              dyn_vi16);  // in two steps: see dyn_weights
        }
        for (int e = 0; w_rec && e < n_spiking; ++e) {
            dyn_add_row_i16<V>(sums, w_rec + (dyn_i64)idx[e] * DYN_N + k0, cnt[e]);
        }
        for (dyn_i64 e = e_begin; in_integer && w_in && e < e_end; ++e) {
            dyn_add_row_i16<V>(sums, w_in + (dyn_i64)ev_channel[e] * DYN_N + k0, ev_value[e]);
        }
#pragma GCC unroll 16
        for (int v = 0; v < V / 2; ++v) {
            const dyn_vf2 exact = __builtin_convertvector(sums[v], dyn_vf2);
            memcpy(&acc[2 * v], &exact, sizeof exact);
        }
        if (in_integer || !w_in) {
            memcpy(drive + k0, acc, sizeof acc);
            return;
        }
    } else
#else
    (void)rec_integer;
    (void)in_integer;
#endif
    {
        if (onto) {
            memcpy(acc, drive + k0, sizeof acc);
        } else {
#pragma GCC unroll 16
            for (int v = 0; v < V; ++v) acc[v] = dyn_vf{};
        }
        for (int e = 0; w_rec && e < n_spiking; ++e) {
            dyn_add_row<V>(acc, w_rec + (dyn_i64)idx[e] * DYN_N + k0, cnt[e]);
        }
    }
    for (dyn_i64 e = e_begin; w_in && e < e_end; ++e) {
        dyn_add_row<V>(acc, w_in + (dyn_i64)ev_channel[e] * DYN_N + k0, ev_value[e]);
    }
    memcpy(drive + k0, acc, sizeof acc);
}

DYN_FN void dyn_drive_blocks(float* __restrict__ drive, bool onto,
                             const dyn_weight* __restrict__ w_rec,
                             const int* __restrict__ idx, const float* __restrict__ cnt,
                             int n_spiking, const dyn_weight* __restrict__ w_in,
                             const int* __restrict__ ev_channel, const float* __restrict__ ev_value,
                             dyn_i64 e_begin, dyn_i64 e_end, int max_abs_rec, int max_abs_in) {
    if (!w_rec && !w_in) {  // every row sparse (added `onto` the drive), or none
        if (!onto) memset(drive, 0, DYN_DRIVE_BLOCKED * sizeof(float));
        return;
    }
    bool rec_integer = false, in_integer = false;
#if DYN_INTEGER_DRIVE
    // the W_rec part first (the sparse rows of `onto` count as the dense ones do), then the
    // W_in rows within what the bound has left
    const bool has_rec = w_rec || onto;
    int bound = 0;
    rec_integer = !has_rec || dyn_integer_counts(cnt, 0, n_spiking, max_abs_rec, &bound);
    in_integer = rec_integer && w_in &&
                 dyn_integer_counts(ev_value, e_begin, e_end, max_abs_in, &bound);
    rec_integer = rec_integer && (has_rec || in_integer);  // else there is nothing to add
#else
    (void)max_abs_rec;
    (void)max_abs_in;
#endif
    for (int k0 = 0; k0 < DYN_DRIVE_FULL; k0 += DYN_LANES * DYN_DRIVE_VECTORS) {
        dyn_drive_block<DYN_DRIVE_VECTORS>(k0, rec_integer, in_integer, drive, onto, w_rec, idx,
                                           cnt, n_spiking, w_in, ev_channel, ev_value, e_begin,
                                           e_end);
    }
#if DYN_DRIVE_TAIL_VECTORS
    dyn_drive_block<DYN_DRIVE_TAIL_VECTORS>(DYN_DRIVE_FULL, rec_integer, in_integer, drive, onto,
                                            w_rec, idx, cnt, n_spiking, w_in, ev_channel,
                                            ev_value, e_begin, e_end);
#endif
}

// The one-thread host build may also take a weight matrix as sparse rows (CSR: the nonzero
// weights of row r at [ptr[r], ptr[r + 1]) with their post neurons, ascending; W_rec rows
// then W_in rows, runner/kernel/backends/cpu.py: sparse_rows): a spike then costs its row's nonzero
// weights, not N. Per neuron the same products are added in the same order as the dense rows
// but for the zero weights' +0 or -0, which change no sum that starts at +0 (none is ever
// -0). A non-finite `c` (an instance already flagged non-finite) takes every weight, zeros
// too, as a dense row (0 x inf is NaN).
#define DYN_SPARSE_ROWS 1
DYN_FN void dyn_add_sparse_row(float* __restrict__ drive, const dyn_i64* __restrict__ ptr,
                               const int* __restrict__ post, const float* __restrict__ weight,
                               int row, float c) {
    const dyn_i64 begin = ptr[row], end = ptr[row + 1];
    if (fabsf(c) <= DYN_FLT_MAX) {
        for (dyn_i64 j = begin; j < end; ++j) drive[post[j]] += weight[j] * c;
        return;
    }
    dyn_i64 j = begin;
    for (int n = 0; n < DYN_N; ++n) {
        const bool nonzero = j < end && post[j] == n;
        drive[n] += (nonzero ? weight[j] : 0.0f) * c;
        j += nonzero ? 1 : 0;
    }
}

// Step 3. Bits 0 and 1 of 64 flag bytes as two words of bits: one byte test each where
// AVX-512 has it, a shift and a byte mask per 32 bytes with AVX2 (GCC vectorised the
// multiplies below into 64-bit vector multiplies that cost 5 % of a step), else a multiply
// per 8 bytes packs them.
DYN_FN void dyn_flag_bits(const unsigned char* __restrict__ at, dyn_u64* fired, dyn_u64* multi) {
#if defined(__AVX512BW__)
    const __m512i bytes = _mm512_loadu_si512(at);
    *fired = _mm512_test_epi8_mask(bytes, _mm512_set1_epi8(1));
    *multi = _mm512_test_epi8_mask(bytes, _mm512_set1_epi8(2));
#elif defined(__AVX2__)
    const __m256i low = _mm256_loadu_si256((const __m256i*)at);
    const __m256i high = _mm256_loadu_si256((const __m256i*)(at + 32));
    // in each 16-bit lane a left shift by 7 - b moves bit b of both bytes to their top bits,
    // which movemask collects
    auto top = [](__m256i bytes, int shift) {
        return (dyn_u64)(dyn_u32)_mm256_movemask_epi8(_mm256_slli_epi16(bytes, shift));
    };
    *fired = top(low, 7) | top(high, 7) << 32;
    *multi = top(low, 6) | top(high, 6) << 32;
#else
    dyn_u64 low_bits = 0, high_bits = 0;
    for (int j = 0; j < 64; j += 8) {
        dyn_u64 bytes;
        memcpy(&bytes, at + j, sizeof bytes);
        const dyn_u64 low = bytes & 0x0101010101010101ull;
        const dyn_u64 high = (bytes >> 1) & 0x0101010101010101ull;
        low_bits |= ((low * 0x0102040810204080ull) >> 56) << j;
        high_bits |= ((high * 0x0102040810204080ull) >> 56) << j;
    }
    *fired = low_bits;
    *multi = high_bits;
#endif
}

// f(k) for every set bit k of `words` (n_words of them), in ascending order.
template <class F>
DYN_FN void dyn_each_bit(const dyn_u64* words, int n_words, F f) {
    for (int w = 0; w < n_words; ++w) {
        for (dyn_u64 bits = words[w]; bits; bits &= bits - 1) f(64 * w + __builtin_ctzll(bits));
    }
}

// The vector passes over all neurons (where many fire, or need the log), kept out of line so
// that they leave the model step's registers alone. They read a neuron's flags from its
// ratio (flag 3: ratio > 2.5, flag 1 or 3: ratio > 1; the one-thread build has no padding
// slots, so every slot is valid): a byte array in the loop would make GCC vectorise it 32
// lanes wide, with masked loads, at 2.4 times the cost.
static_assert(!DYN_PADDED, "the one-thread build's slots are its neurons");
// The spike counts of the neurons flagged 3 (fired, ratio > 2.5), as the scalar count.
__attribute__((noinline)) static void dyn_count_all(float* __restrict__ spikes,
                                                    const float* __restrict__ ratio) {
    DYN_SIMD
    for (int k = 0; k < DYN_NPT; ++k) {
        const float count = ceilf(dyn_logf(ratio[k]));
        spikes[k] = ratio[k] > 2.5f ? count : spikes[k];
    }
}

// The per-neuron reductions of step t, every neuron at once (spikes[k] is 0 where none
// fired): the scalar record's operations, so the same values.
__attribute__((noinline)) static void dyn_record_all(
    int t, const float* __restrict__ spikes, const float* __restrict__ ratio,
    dyn_i64* __restrict__ spike_count, int* __restrict__ bin, int* __restrict__ spiking_steps,
    double* __restrict__ isi_sumsq, int* __restrict__ first_spike, int* __restrict__ last_spike) {
    DYN_SIMD
    for (int k = 0; k < DYN_NPT; ++k) {
        const bool fired = ratio[k] > 1.0f;
        const int c = (int)(spikes[k] < DYN_MAX_COUNT ? spikes[k] : DYN_MAX_COUNT);
        spike_count[k] += c;
        bin[k] += c;
        spiking_steps[k] += fired ? 1 : 0;
        const int last = last_spike[k];
        const double interval = (double)(t - last);
        isi_sumsq[k] += (fired && last >= 0) ? interval * interval : 0.0;
        first_spike[k] = (fired && last < 0) ? t : first_spike[k];
        last_spike[k] = fired ? t : last;
    }
}

// Step 3 where any neuron fired (dynapsim_run): the flags of 64 neurons as the bits of one
// word (dyn_flag_bits), then the set bits in order; spiking neurons are too many and too
// random for a branch per neuron to predict. Where many fire, or need the log, a vector pass
// over all neurons costs less than one scalar pass per spiking neuron: the same operations,
// so the same bits. `count(k)` and `record(k)` are the kernel's count and per-neuron
// reductions of neuron k (`record` appends it to the spike list s_idx/s_cnt at n_local), the
// reduction arrays this instance's rows.
template <class Count, class Record>
DYN_FN void dyn_count_and_record(int t, const unsigned char* over, float* spikes,
                                 const float* ratio, Count count, Record record,
                                 dyn_i64* spike_count, int* bin, int* spiking_steps,
                                 double* isi_sumsq, int* first_spike, int* last_spike,
                                 int* s_idx, float* s_cnt, int& n_local) {
    constexpr int n_words = (DYN_NPT + 63) / 64;
    dyn_u64 fired_bits[n_words], multi_bits[n_words];
    int n_fired = 0, n_multi = 0;
    for (int w = 0; w < n_words; ++w) {
        dyn_flag_bits(over + 64 * w, &fired_bits[w], &multi_bits[w]);
        n_fired += __builtin_popcountll(fired_bits[w]);
        n_multi += __builtin_popcountll(multi_bits[w]);
    }
    if (n_multi > DYN_NPT / 32) {
        dyn_count_all(spikes, ratio);
    } else {
        dyn_each_bit(multi_bits, n_words, [&](int k) { spikes[k] = count(k); });
    }
    if (n_fired > DYN_NPT / 8) {
        dyn_record_all(t, spikes, ratio, spike_count, bin, spiking_steps, isi_sumsq, first_spike,
                       last_spike);
        dyn_each_bit(fired_bits, n_words, [&](int k) {
            s_idx[n_local] = k;
            s_cnt[n_local++] = spikes[k];
        });
    } else {
        dyn_each_bit(fired_bits, n_words, record);
    }
}
