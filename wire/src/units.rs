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

/// A duration in at most six characters, unit included: `850ns`, `8.7µs`,
/// `149µs`, `1.2ms`, `265ms`, `1.70s`, `36.2s`, `125s` (for narrow columns:
/// a number never loses its unit).
pub fn fmt_duration_compact(ns: u64) -> String {
    let f = ns as f64;
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=9_949 => format!("{:.1}µs", f / 1e3),
        9_950..=999_499 => format!("{:.0}µs", f / 1e3),
        999_500..=9_949_999 => format!("{:.1}ms", f / 1e6),
        9_950_000..=999_499_999 => format!("{:.0}ms", f / 1e6),
        999_500_000..=9_994_999_999 => format!("{:.2}s", f / 1e9),
        9_995_000_000..=99_949_999_999 => format!("{:.1}s", f / 1e9),
        _ => format!("{:.0}s", f / 1e9),
    }
}

/// A moment of a session written to the precision a view of `span_ns` needs:
/// `1.5 s` in a 10 s view, `1.2346 s` in a 1 ms one.
pub fn fmt_moment_within(ns: u64, span_ns: u64) -> String {
    // Decimals enough to tell apart a tenth of the span.
    let tenth = (span_ns / 10).max(1) as f64 / 1e9;
    let decimals = (-tenth.log10().floor()).clamp(0.0, 9.0) as usize;
    format!("{:.*} s", decimals, ns as f64 / 1e9)
}

/// `s` cut to at most `max` bytes, on a character boundary (labels kept short).
///
/// ```
/// assert_eq!(looptrace_wire::units::clip_bytes("héllo", 2), "h");
/// assert_eq!(looptrace_wire::units::clip_bytes("hello", 9), "hello");
/// ```
pub fn clip_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
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

    #[test]
    fn compact_units_fit_six_characters() {
        let cases = [
            (850, "850ns"),
            (8_700, "8.7µs"),
            (9_960, "10µs"),
            (149_800, "150µs"),
            (1_200_000, "1.2ms"),
            (265_200_000, "265ms"),
            (999_600_000, "1.00s"),
            (1_700_000_000, "1.70s"),
            (36_200_000_000, "36.2s"),
            (125_000_000_000, "125s"),
        ];
        for (ns, want) in cases {
            assert_eq!(fmt_duration_compact(ns), want);
        }
        for ns in (0..40).map(|k| 10u64.pow(k / 4) * [1, 2, 5, 9][k as usize % 4] - 1) {
            let s = fmt_duration_compact(ns);
            assert!(s.chars().count() <= 6, "{ns}: {s}");
            assert!(s.ends_with('s'), "{ns}: {s}");
        }
    }

    #[test]
    fn moments_as_precise_as_the_view() {
        assert_eq!(fmt_moment_within(1_500_000_000, 5_000_000_000), "1.5 s");
        assert_eq!(fmt_moment_within(2_000_000_000, 10_000_000_000), "2 s");
        assert_eq!(fmt_moment_within(1_234_567_890, 1_000_000), "1.2346 s");
        assert_eq!(fmt_moment_within(0, 100_000_000_000), "0 s");
    }
}
