//! Scheduling policies: how often core counts are decided (per query, per layer, per block of
//! layers), in which order waiting queries get cores, and how versions are chosen (at the
//! measured contention level, or solo best).

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

/// Which waiting query is offered cores first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Order {
    /// The oldest (first come, first served).
    Arrival,
    /// The one whose QoS deadline (arrival + target) is earliest.
    Deadline,
}

/// How each layer's version is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VersionPolicy {
    /// The fastest version at the estimated contention level for the width the block got, when
    /// it beats the solo-best version there by more than a noise margin (`ModelProfile::version_for`).
    Adaptive,
    /// The fastest version without contention for that width.
    SoloBest,
}

/// A complete policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    pub granularity: Granularity,
    pub order: Order,
    pub versions: VersionPolicy,
}

impl Policy {
    /// `model-wise` (FCFS), `layer-wise`, `layer-block` (both earliest deadline first) or
    /// `veltair` (layer-block with adaptive versions), each optionally followed by suffixes
    /// overriding its defaults: `+adaptive` / `+solo-best` (versions), `+fcfs` / `+deadline`
    /// (order).
    pub fn parse(text: &str) -> Result<Policy, String> {
        let mut parts = text.split('+');
        let base = parts.next().unwrap_or_default();
        let mut policy = preset(base)
            .ok_or_else(|| format!("unknown policy `{base}` (model-wise, layer-wise, layer-block or veltair)"))?;
        for suffix in parts {
            match suffix {
                "adaptive" => policy.versions = VersionPolicy::Adaptive,
                "solo-best" => policy.versions = VersionPolicy::SoloBest,
                "fcfs" => policy.order = Order::Arrival,
                "deadline" => policy.order = Order::Deadline,
                other => {
                    return Err(format!("unknown policy suffix `+{other}` (adaptive, solo-best, fcfs or deadline)"))
                }
            }
        }
        Ok(policy)
    }

    /// The shortest name `parse` accepts for this policy.
    pub fn name(&self) -> String {
        let base = match (self.granularity, self.versions) {
            (Granularity::ModelWise, _) => "model-wise",
            (Granularity::LayerWise, _) => "layer-wise",
            (Granularity::LayerBlock, VersionPolicy::Adaptive) => "veltair",
            (Granularity::LayerBlock, VersionPolicy::SoloBest) => "layer-block",
        };
        let defaults = preset(base).unwrap_or(*self);
        let mut name = base.to_string();
        if self.versions != defaults.versions {
            name.push_str(if self.versions == VersionPolicy::Adaptive { "+adaptive" } else { "+solo-best" });
        }
        if self.order != defaults.order {
            name.push_str(if self.order == Order::Arrival { "+fcfs" } else { "+deadline" });
        }
        name
    }
}

/// The policy a base name stands for, with its default order and version choice.
fn preset(base: &str) -> Option<Policy> {
    let (granularity, order, versions) = match base {
        "model-wise" => (Granularity::ModelWise, Order::Arrival, VersionPolicy::SoloBest),
        "layer-wise" => (Granularity::LayerWise, Order::Deadline, VersionPolicy::SoloBest),
        "layer-block" => (Granularity::LayerBlock, Order::Deadline, VersionPolicy::SoloBest),
        "veltair" => (Granularity::LayerBlock, Order::Deadline, VersionPolicy::Adaptive),
        _ => return None,
    };
    Some(Policy { granularity, order, versions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "model-wise",
            "layer-wise",
            "layer-block",
            "veltair",
            "model-wise+adaptive",
            "layer-wise+adaptive",
            "veltair+fcfs",
            "model-wise+deadline",
            "layer-wise+adaptive+fcfs",
        ] {
            assert_eq!(Policy::parse(name).unwrap().name(), name);
        }
        assert_eq!(Policy::parse("layer-block+solo-best").unwrap().name(), "layer-block");
        assert_eq!(Policy::parse("layer-block+adaptive").unwrap().name(), "veltair");
        assert_eq!(Policy::parse("veltair+solo-best+fcfs").unwrap().name(), "layer-block+fcfs");
        assert_eq!(Policy::parse("model-wise").unwrap().order, Order::Arrival);
        assert_eq!(Policy::parse("veltair").unwrap().order, Order::Deadline);
        assert!(Policy::parse("fifo").unwrap_err().contains("unknown policy"));
        assert!(Policy::parse("veltair+fast").unwrap_err().contains("unknown policy suffix"));
    }
}
