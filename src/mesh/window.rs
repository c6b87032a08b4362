//! Fixed time windows: a ring of `len` buckets of `bucket_us` each, keyed by event time, so a
//! plot of the last five minutes costs the same memory at any event rate. Time only moves
//! forward with the newest event seen; an event older than the window is dropped.

#[derive(Debug, Clone)]
pub struct Window<T> {
    bucket_us: i64,
    /// Each slot with the bucket number (time / bucket_us) it holds, `i64::MIN` when never
    /// used. Side by side in one block: reading thousands of edges' rates is cache misses.
    slots: Box<[(i64, T)]>,
    newest: i64,
}

impl<T: Default> Window<T> {
    /// `len` buckets of `bucket_us` microseconds; both at least 1.
    pub fn new(len: usize, bucket_us: i64) -> Self {
        let len = len.max(1);
        Window {
            bucket_us: bucket_us.max(1),
            slots: (0..len).map(|_| (i64::MIN, T::default())).collect(),
            newest: i64::MIN,
        }
    }

    /// How many buckets the window spans.
    pub fn buckets(&self) -> usize {
        self.slots.len()
    }

    pub fn bucket_us(&self) -> i64 {
        self.bucket_us
    }

    /// The bucket for `time_us`, cleared if it last held an older period; `None` when the
    /// time is older than the window.
    pub fn at(&mut self, time_us: i64) -> Option<&mut T> {
        let b = time_us.div_euclid(self.bucket_us);
        let len = self.slots.len() as i64;
        if self.newest != i64::MIN && b <= self.newest - len {
            return None;
        }
        self.newest = self.newest.max(b);
        let slot = &mut self.slots[b.rem_euclid(len) as usize];
        if slot.0 != b {
            *slot = (b, T::default());
        }
        Some(&mut slot.1)
    }

    /// The window's buckets ending with the one holding `end_us`, oldest first, as
    /// (bucket start in µs, contents); `None` for a bucket nothing fell into.
    pub fn iter(&self, end_us: i64) -> impl Iterator<Item = (i64, Option<&T>)> + '_ {
        let end = end_us.div_euclid(self.bucket_us);
        let len = self.slots.len();
        let start = end - len as i64 + 1;
        // One division, then the slot index steps round: this runs for every edge whenever
        // the graph view refreshes its rates.
        let mut i = start.rem_euclid(len as i64) as usize;
        (start..=end).map(move |b| {
            let (stamp, slot) = &self.slots[i];
            let slot = (*stamp == b).then_some(slot);
            i = if i + 1 == len { 0 } else { i + 1 };
            (b * self.bucket_us, slot)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn buckets_by_time_and_forgets_what_fell_out() {
        let mut w: Window<u32> = Window::new(3, S);
        *w.at(10 * S).unwrap() += 1;
        *w.at(10 * S + 999_999).unwrap() += 1;
        *w.at(11 * S).unwrap() += 5;
        let got: Vec<_> = w.iter(12 * S).map(|(t, c)| (t / S, c.copied())).collect();
        assert_eq!(got, vec![(10, Some(2)), (11, Some(5)), (12, None)]);
        // 13 s pushes 10 s out; its slot is reused and starts from zero.
        *w.at(13 * S).unwrap() += 1;
        assert!(w.at(10 * S).is_none(), "older than the window");
        let got: Vec<_> = w.iter(13 * S).map(|(t, c)| (t / S, c.copied())).collect();
        assert_eq!(got, vec![(11, Some(5)), (12, None), (13, Some(1))]);
    }

    #[test]
    fn a_late_event_inside_the_window_still_counts() {
        let mut w: Window<u32> = Window::new(300, S);
        *w.at(100 * S).unwrap() += 1;
        *w.at(50 * S).unwrap() += 1;
        let total: u32 = w.iter(100 * S).filter_map(|(_, c)| c).sum();
        assert_eq!(total, 2);
    }
}
