//! The code-generation target: x86-64 with an explicit feature set (AVX2 + FMA baseline). The
//! features travel with the code; `veltair-load` refuses a host that lacks them.

use cranelift_codegen::isa::{self, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};

/// Cranelift's optimisation level. Hand-scheduled kernels are often fastest at `None` (the
/// e-graph pass at `Speed` can re-sink instructions and cause spills), so both are measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptLevel {
    None,
    Speed,
}

/// A code-generation target.
pub struct Target {
    pub(crate) isa: OwnedTargetIsa,
    features: Vec<&'static str>,
}

/// The CPU features generated code may use: the x86-64-v3 set (AVX2, FMA, BMI).
pub const BASELINE_FEATURES: &[&str] =
    &["sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "avx", "avx2", "fma", "bmi1", "bmi2", "lzcnt"];

impl Target {
    /// The x86-64 AVX2+FMA baseline target.
    pub fn x86_64_v3(opt: OptLevel) -> Result<Target, String> {
        let mut flags = settings::builder();
        let level = match opt {
            OptLevel::None => "none",
            OptLevel::Speed => "speed",
        };
        flags.set("opt_level", level).map_err(|e| e.to_string())?;
        let triple = "x86_64-unknown-linux-gnu".parse().map_err(|e| format!("{e:?}"))?;
        let mut builder = isa::lookup(triple).map_err(|e| e.to_string())?;
        for f in BASELINE_FEATURES {
            let name = format!("has_{}", f.replace('.', ""));
            builder.enable(&name).map_err(|e| format!("{name}: {e}"))?;
        }
        let isa = builder.finish(settings::Flags::new(flags)).map_err(|e| e.to_string())?;
        Ok(Target { isa, features: BASELINE_FEATURES.to_vec() })
    }

    /// The CPU features code for this target needs.
    pub fn features(&self) -> &[&'static str] {
        &self.features
    }
}
