//! A log-linear latency histogram: every power of two is split into 16 equal buckets, so a
//! quantile read back is off by at most 1/32 (3.1 %) of the true value, memory is fixed
//! (464 `u32` counters, 1.8 KiB) and two histograms merge by adding counters — which is what
//! lets per-second plots and per-edge stats share one type.

/// Linear sub-buckets per power of two: 2^4 = 16 gives a worst-case relative error of 1/32.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Values from 2^32 µs (71 min) up are clamped into the last bucket; `max` stays exact.
const TOP_EXP: u32 = 32;
/// 16 exact buckets for 0..16, then 16 per power of two from 2^4 to 2^31.
pub const BUCKETS: usize = ((TOP_EXP - SUB_BITS + 1) as usize) * SUB as usize;

/// The worst relative error of a quantile: half a bucket over the bucket's lower bound.
pub const MAX_RELATIVE_ERROR: f64 = 1.0 / (2 * SUB) as f64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u32]>,
    total: u64,
    sum: u64,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

fn index(v: u64) -> usize {
    let v = v.min((1 << TOP_EXP) - 1);
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) as u64 * SUB + sub) as usize
}

/// The middle of bucket `i`, the value a quantile in it reads back as.
fn midpoint(i: usize) -> u64 {
    let group = i as u64 / SUB;
    if group == 0 {
        return i as u64;
    }
    let sub = i as u64 % SUB;
    let width = 1u64 << (group - 1);
    (SUB + sub) * width + width / 2
}

impl Histogram {
    pub fn record(&mut self, value_us: u64) {
        let c = &mut self.counts[index(value_us)];
        *c = c.saturating_add(1);
        self.total += 1;
        self.sum = self.sum.saturating_add(value_us);
        self.min = self.min.min(value_us);
        self.max = self.max.max(value_us);
    }

    /// Records `n` observations of one value at once: how a metrics source, which knows
    /// only how many fell in a bucket, fills a histogram.
    pub fn record_n(&mut self, value_us: u64, n: u64) {
        if n == 0 {
            return;
        }
        let c = &mut self.counts[index(value_us)];
        *c = c.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        self.total += n;
        self.sum = self.sum.saturating_add(value_us.saturating_mul(n));
        self.min = self.min.min(value_us);
        self.max = self.max.max(value_us);
    }

    /// Adds `other`'s observations, as if they had been recorded here.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.total += other.total;
        self.sum = self.sum.saturating_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }

    pub fn min(&self) -> Option<u64> {
        (self.total > 0).then_some(self.min)
    }

    pub fn max(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }

    /// The nearest-rank `q` quantile (0.0..=1.0), within `MAX_RELATIVE_ERROR` of the exact
    /// one; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some(midpoint(i).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    pub fn p50(&self) -> Option<u64> {
        self.quantile(0.50)
    }

    pub fn p95(&self) -> Option<u64> {
        self.quantile(0.95)
    }

    pub fn p99(&self) -> Option<u64> {
        self.quantile(0.99)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// xorshift64*: deterministic random data without a dependency.
    pub(crate) struct Rng(pub u64);
    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        /// Log-uniform over 1 µs ..= ~2^30 µs, the spread real latencies have.
        pub(crate) fn latency(&mut self) -> u64 {
            let exp = self.next() % 30;
            (1u64 << exp) + self.next() % (1u64 << exp)
        }
    }

    fn exact(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    #[test]
    fn quantiles_are_within_the_error_bound_on_random_data() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..20 {
            let n = 1 + (rng.next() % 5000) as usize;
            let mut values: Vec<u64> = (0..n).map(|_| rng.latency()).collect();
            let mut h = Histogram::default();
            values.iter().for_each(|&v| h.record(v));
            values.sort_unstable();
            for q in [0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
                let want = exact(&values, q) as f64;
                let got = h.quantile(q).unwrap() as f64;
                let err = (got - want).abs() / want;
                assert!(
                    err <= MAX_RELATIVE_ERROR,
                    "round {round} q {q}: got {got}, exact {want}, error {err}"
                );
            }
            assert_eq!(h.count(), n as u64);
            assert_eq!(h.min(), values.first().copied());
            assert_eq!(h.max(), values.last().copied());
        }
    }

    #[test]
    fn small_values_are_exact_and_huge_ones_clamp() {
        let mut h = Histogram::default();
        (0..16).for_each(|v| h.record(v));
        assert_eq!(h.quantile(0.5), Some(7));
        h.record(u64::MAX / 2);
        assert_eq!(h.max(), Some(u64::MAX / 2));
        assert!(h.quantile(1.0).unwrap() >= 1 << 31);
    }

    #[test]
    fn merging_equals_recording_everything_in_one() {
        let mut rng = Rng(7);
        let (mut a, mut b, mut all) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for i in 0..10_000 {
            let v = rng.latency();
            if i % 3 == 0 { &mut a } else { &mut b }.record(v);
            all.record(v);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(a.p99(), all.p99());
    }

    #[test]
    fn recording_n_at_once_equals_recording_n_times() {
        let (mut one, mut many) = (Histogram::default(), Histogram::default());
        one.record_n(1_500, 3);
        one.record_n(9, 0);
        (0..3).for_each(|_| many.record(1_500));
        assert_eq!(one, many);
    }

    #[test]
    fn empty_histogram_has_no_quantiles() {
        let h = Histogram::default();
        assert_eq!(h.p50(), None);
        assert_eq!(h.mean(), None);
    }
}
