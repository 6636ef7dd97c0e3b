//! How durations and moments are written for people, the same everywhere.

/// A duration with a sensible unit: `850 ns`, `12.5 µs`, `3.2 ms`, `1.50 s`.
pub fn fmt_duration(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// A moment of a session: seconds since its origin, to the microsecond.
pub fn fmt_moment(ns: u64) -> String {
    format!(
        "{}.{:06} s",
        ns / 1_000_000_000,
        (ns % 1_000_000_000) / 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(fmt_duration(850), "850 ns");
        assert_eq!(fmt_duration(2_013), "2.0 µs");
        assert_eq!(fmt_duration(12_500), "12.5 µs");
        assert_eq!(fmt_duration(3_200_000), "3.2 ms");
        assert_eq!(fmt_duration(1_500_000_000), "1.50 s");
        assert_eq!(fmt_moment(1_001_494_123), "1.001494 s");
    }
}
