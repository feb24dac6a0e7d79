//! The host's CPU features, by the names code generators and bundles use (`avx2`, `fma`,
//! `sse4.1`, ...).

/// Whether this CPU has `feature`; unknown names count as missing.
#[cfg(target_arch = "x86_64")]
pub fn host_has(feature: &str) -> bool {
    match feature {
        "sse3" => std::arch::is_x86_feature_detected!("sse3"),
        "ssse3" => std::arch::is_x86_feature_detected!("ssse3"),
        "sse4.1" => std::arch::is_x86_feature_detected!("sse4.1"),
        "sse4.2" => std::arch::is_x86_feature_detected!("sse4.2"),
        "popcnt" => std::arch::is_x86_feature_detected!("popcnt"),
        "avx" => std::arch::is_x86_feature_detected!("avx"),
        "avx2" => std::arch::is_x86_feature_detected!("avx2"),
        "fma" => std::arch::is_x86_feature_detected!("fma"),
        "bmi1" => std::arch::is_x86_feature_detected!("bmi1"),
        "bmi2" => std::arch::is_x86_feature_detected!("bmi2"),
        "lzcnt" => std::arch::is_x86_feature_detected!("lzcnt"),
        "f16c" => std::arch::is_x86_feature_detected!("f16c"),
        "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
        _ => false,
    }
}

/// Whether this CPU has `feature`: never, off x86-64 (all generated code is x86-64).
#[cfg(not(target_arch = "x86_64"))]
pub fn host_has(_feature: &str) -> bool {
    false
}

/// The features of `required` this CPU lacks, in order.
pub fn missing_features<S: AsRef<str>>(required: &[S]) -> Vec<String> {
    required.iter().map(AsRef::as_ref).filter(|f| !host_has(f)).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_foreign_features_are_missing() {
        assert_eq!(missing_features(&["no-such-feature"]), vec!["no-such-feature".to_string()]);
        assert!(missing_features::<&str>(&[]).is_empty());
    }
}
