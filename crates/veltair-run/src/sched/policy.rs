//! Scheduling policies: how often core counts are decided (per query, per layer, per block of
//! layers) and how versions are chosen (at the measured contention level, or solo best).

/// When the core count is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// Once per query: the smallest width whose profiled latency meets the QoS target, held for
    /// the whole model; the query waits until that many cores are free.
    ModelWise,
    /// Per layer: each layer's share of the QoS budget decides its width; it runs on fewer cores
    /// when fewer are free (a conflict), and waits only when none is.
    LayerWise,
    /// Per block of consecutive layers with close preferred widths (closeness adapts to load);
    /// a block runs narrower than planned (a conflict) if that still fits its budget, or when
    /// no width fits it any more (a late query does not hold up the ones behind it).
    LayerBlock,
}

/// How each layer's version is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VersionPolicy {
    /// The fastest version at the estimated contention level for the width the block got.
    Adaptive,
    /// The fastest version without contention for that width.
    SoloBest,
}

/// A complete policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    pub granularity: Granularity,
    pub versions: VersionPolicy,
}

impl Policy {
    /// `model-wise`, `layer-wise`, `layer-block` or `veltair` (layer-block with adaptive
    /// versions), optionally suffixed `+adaptive` / `+solo-best`.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let (base, versions) = match text.split_once('+') {
            Some((b, "adaptive")) => (b, Some(VersionPolicy::Adaptive)),
            Some((b, "solo-best")) => (b, Some(VersionPolicy::SoloBest)),
            Some((_, v)) => return Err(format!("unknown version policy `{v}` (adaptive or solo-best)")),
            None => (text, None),
        };
        let (granularity, default_versions) = match base {
            "model-wise" => (Granularity::ModelWise, VersionPolicy::SoloBest),
            "layer-wise" => (Granularity::LayerWise, VersionPolicy::SoloBest),
            "layer-block" => (Granularity::LayerBlock, VersionPolicy::SoloBest),
            "veltair" => (Granularity::LayerBlock, VersionPolicy::Adaptive),
            other => return Err(format!("unknown policy `{other}` (model-wise, layer-wise, layer-block or veltair)")),
        };
        Ok(Policy { granularity, versions: versions.unwrap_or(default_versions) })
    }

    /// The name `parse` accepts for this policy.
    pub fn name(&self) -> String {
        let base = match self.granularity {
            Granularity::ModelWise => "model-wise",
            Granularity::LayerWise => "layer-wise",
            Granularity::LayerBlock => "layer-block",
        };
        match (self.granularity, self.versions) {
            (Granularity::LayerBlock, VersionPolicy::Adaptive) => "veltair".to_string(),
            (_, VersionPolicy::SoloBest) => base.to_string(),
            (_, VersionPolicy::Adaptive) => format!("{base}+adaptive"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in ["model-wise", "layer-wise", "layer-block", "veltair", "model-wise+adaptive", "layer-wise+adaptive"]
        {
            assert_eq!(Policy::parse(name).unwrap().name(), name);
        }
        assert_eq!(Policy::parse("layer-block+solo-best").unwrap().name(), "layer-block");
        assert!(Policy::parse("fifo").unwrap_err().contains("unknown policy"));
        assert!(Policy::parse("veltair+fast").unwrap_err().contains("unknown version policy"));
    }
}
