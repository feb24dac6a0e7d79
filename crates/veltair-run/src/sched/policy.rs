//! Scheduling policies: how often core counts are decided (per query, per layer, per block of
//! layers), in which order waiting queries get cores, whether a block alone in the queue also
//! takes idle cores, and how versions are chosen (at the measured contention level, or solo
//! best).

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
    /// a block runs narrower than planned (a conflict) if that still fits its share of the
    /// budget or, with the rest of the query at full width, the whole remaining budget; or when
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

/// What a block does with cores nobody else is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Idle {
    /// Takes the smallest width that fits its budget, leaving the rest idle.
    Fit,
    /// When no other query waits, also takes idle cores that still speed it up efficiently
    /// (`Scheduler` states the efficiency bound): lower latency at low load, no change when
    /// queries queue.
    Widen,
}

/// A complete policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    pub granularity: Granularity,
    pub order: Order,
    pub idle: Idle,
    pub versions: VersionPolicy,
}

impl Policy {
    /// `model-wise` (FCFS, fitted width), `layer-wise`, `layer-block` (both earliest deadline
    /// first, widening into idle cores) or `veltair` (layer-block with adaptive versions), each
    /// optionally followed by suffixes overriding its defaults: `+adaptive` / `+solo-best`
    /// (versions), `+fcfs` / `+deadline` (order), `+fit` / `+widen` (idle cores).
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
                "fit" => policy.idle = Idle::Fit,
                "widen" => policy.idle = Idle::Widen,
                other => {
                    return Err(format!(
                        "unknown policy suffix `+{other}` (adaptive, solo-best, fcfs, deadline, fit or widen)"
                    ))
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
        if self.idle != defaults.idle {
            name.push_str(if self.idle == Idle::Fit { "+fit" } else { "+widen" });
        }
        name
    }
}

/// The policy a base name stands for, with its default order and version choice.
fn preset(base: &str) -> Option<Policy> {
    let (granularity, order, idle, versions) = match base {
        "model-wise" => (Granularity::ModelWise, Order::Arrival, Idle::Fit, VersionPolicy::SoloBest),
        "layer-wise" => (Granularity::LayerWise, Order::Deadline, Idle::Widen, VersionPolicy::SoloBest),
        "layer-block" => (Granularity::LayerBlock, Order::Deadline, Idle::Widen, VersionPolicy::SoloBest),
        "veltair" => (Granularity::LayerBlock, Order::Deadline, Idle::Widen, VersionPolicy::Adaptive),
        _ => return None,
    };
    Some(Policy { granularity, order, idle, versions })
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
            "veltair+fit",
            "model-wise+widen",
            "layer-block+fcfs+fit",
        ] {
            assert_eq!(Policy::parse(name).unwrap().name(), name);
        }
        assert_eq!(Policy::parse("layer-block+solo-best").unwrap().name(), "layer-block");
        assert_eq!(Policy::parse("layer-block+adaptive").unwrap().name(), "veltair");
        assert_eq!(Policy::parse("veltair+solo-best+fcfs").unwrap().name(), "layer-block+fcfs");
        assert_eq!(Policy::parse("model-wise").unwrap().order, Order::Arrival);
        assert_eq!(Policy::parse("veltair").unwrap().order, Order::Deadline);
        assert_eq!(Policy::parse("veltair").unwrap().idle, Idle::Widen);
        assert_eq!(Policy::parse("model-wise").unwrap().idle, Idle::Fit);
        assert!(Policy::parse("fifo").unwrap_err().contains("unknown policy"));
        assert!(Policy::parse("veltair+fast").unwrap_err().contains("unknown policy suffix"));
    }
}
