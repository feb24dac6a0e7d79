//! The loop-tiling IR: a layer as an iteration domain (named spatial and reduction axes with
//! their extents, and the affine accesses of its tensors) plus a schedule, a list of steps
//! (split, reorder, fuse, vectorize, unroll, parallel, pack, cache_write, compute_at) that
//! prints one step per line and parses back. Each kernel generator implements a family of
//! schedules (a template): it renders its parameters as steps and reads them back from steps,
//! refusing lists outside its family with a message naming the offending step.

use crate::CodegenError;
use std::fmt;
use std::str::FromStr;

/// Whether an axis indexes the output or is summed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxisKind {
    Spatial,
    Reduction,
}

/// One loop of the iteration domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Axis {
    pub name: String,
    pub extent: usize,
    pub kind: AxisKind,
}

/// A tensor read or written at an affine index of the axes (written as text, e.g. `oh*2+kh-1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub tensor: String,
    pub index: Vec<String>,
}

/// A layer's iteration domain: `output[…] (op)= f(inputs[…])` over every point of the axes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    pub name: String,
    pub axes: Vec<Axis>,
    pub output: Access,
    pub inputs: Vec<Access>,
    /// How the inputs combine, e.g. `+= x * w` or `= max`.
    pub body: String,
}

impl Domain {
    /// A domain from `(name, extent)` pairs: spatial axes first, then reduction axes.
    pub fn new(name: &str, spatial: &[(&str, usize)], reduction: &[(&str, usize)]) -> Domain {
        let axis = |kind| move |&(n, e): &(&str, usize)| Axis { name: n.to_string(), extent: e, kind };
        let axes = spatial
            .iter()
            .map(axis(AxisKind::Spatial))
            .chain(reduction.iter().map(axis(AxisKind::Reduction)))
            .collect();
        Domain { name: name.to_string(), axes, output: access("out", &[]), inputs: Vec::new(), body: String::new() }
    }

    /// Sets the accesses and the body.
    pub fn computing(mut self, output: Access, inputs: Vec<Access>, body: &str) -> Domain {
        self.output = output;
        self.inputs = inputs;
        self.body = body.to_string();
        self
    }
}

/// Shorthand for an [`Access`].
pub fn access(tensor: &str, index: &[&str]) -> Access {
    Access { tensor: tensor.to_string(), index: index.iter().map(|s| s.to_string()).collect() }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.tensor, self.index.join(", "))
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |kind| {
            self.axes
                .iter()
                .filter(|a| a.kind == kind)
                .map(|a| format!("{}<{}", a.name, a.extent))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "{}: for {}", self.name, list(AxisKind::Spatial))?;
        let red = list(AxisKind::Reduction);
        if !red.is_empty() {
            write!(f, "; reduce {red}")?;
        }
        let ins: Vec<String> = self.inputs.iter().map(ToString::to_string).collect();
        write!(f, ": {} {} ({})", self.output, self.body, ins.join(", "))
    }
}

/// One schedule step. Split axes are named `axis.0` (outermost) … `axis.k` (innermost);
/// extents that the factors do not divide leave tail iterations, generated separately.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// `split AXIS F1 F2…`: inner extents, outermost first (`split m 64 8` gives m.0, m.1 of
    /// 64/8 = 8 tiles, m.2 of 8 rows).
    Split { axis: String, factors: Vec<usize> },
    /// `reorder A B C…`: loop nest order, outermost first.
    Reorder(Vec<String>),
    /// `fuse A B into C`.
    Fuse { axes: Vec<String>, into: String },
    /// `vectorize AXIS LANES` (f32x4: 4 lanes).
    Vectorize { axis: String, lanes: usize },
    /// `unroll AXIS FACTOR`.
    Unroll { axis: String, factor: usize },
    /// `parallel AXIS MAX_THREADS`: the axis is split among the threads that run the layer.
    Parallel { axis: String, max_threads: usize },
    /// `pack TENSOR [AXES…] at AXIS|compile-time`: a layout transform into a buffer laid out by
    /// the axes (outermost first), done at compile time for constants.
    Pack { tensor: String, layout: Vec<String>, at: Option<String> },
    /// `cache_write TENSOR at AXIS`: accumulate in registers inside the loop.
    CacheWrite { tensor: String, at: String },
    /// `compute_at STAGE AXIS`: run a fused stage (the epilogue) inside that loop.
    ComputeAt { stage: String, at: String },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nums = |v: &[usize]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
        match self {
            Step::Split { axis, factors } => write!(f, "split {axis} {}", nums(factors)),
            Step::Reorder(order) => write!(f, "reorder {}", order.join(" ")),
            Step::Fuse { axes, into } => write!(f, "fuse {} into {into}", axes.join(" ")),
            Step::Vectorize { axis, lanes } => write!(f, "vectorize {axis} {lanes}"),
            Step::Unroll { axis, factor } => write!(f, "unroll {axis} {factor}"),
            Step::Parallel { axis, max_threads } => write!(f, "parallel {axis} {max_threads}"),
            Step::Pack { tensor, layout, at } => {
                write!(f, "pack {tensor} [{}] at {}", layout.join(" "), at.as_deref().unwrap_or("compile-time"))
            }
            Step::CacheWrite { tensor, at } => write!(f, "cache_write {tensor} at {at}"),
            Step::ComputeAt { stage, at } => write!(f, "compute_at {stage} {at}"),
        }
    }
}

fn bad(line: &str, why: &str) -> CodegenError {
    CodegenError::Schedule(format!("schedule step `{line}`: {why}"))
}

impl FromStr for Step {
    type Err = CodegenError;
    fn from_str(line: &str) -> Result<Step, CodegenError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let num = |w: &str| w.parse::<usize>().map_err(|_| bad(line, &format!("`{w}` is not a count")));
        let name = |i: usize| words.get(i).map(|w| w.to_string()).ok_or_else(|| bad(line, "too few words"));
        match words.first().copied() {
            Some("split") if words.len() >= 3 => Ok(Step::Split {
                axis: name(1)?,
                factors: words[2..].iter().map(|w| num(w)).collect::<Result<_, _>>()?,
            }),
            Some("reorder") if words.len() >= 2 => {
                Ok(Step::Reorder(words[1..].iter().map(|w| w.to_string()).collect()))
            }
            Some("fuse") if words.len() >= 4 && words[words.len() - 2] == "into" => Ok(Step::Fuse {
                axes: words[1..words.len() - 2].iter().map(|w| w.to_string()).collect(),
                into: name(words.len() - 1)?,
            }),
            Some("vectorize") if words.len() == 3 => Ok(Step::Vectorize { axis: name(1)?, lanes: num(words[2])? }),
            Some("unroll") if words.len() == 3 => Ok(Step::Unroll { axis: name(1)?, factor: num(words[2])? }),
            Some("parallel") if words.len() == 3 => Ok(Step::Parallel { axis: name(1)?, max_threads: num(words[2])? }),
            Some("pack") => {
                let open = line.find('[').ok_or_else(|| bad(line, "expected `[layout]`"))?;
                let close = line.find(']').ok_or_else(|| bad(line, "expected `]`"))?;
                let rest: Vec<&str> = line[close + 1..].split_whitespace().collect();
                let at = match rest.as_slice() {
                    ["at", "compile-time"] => None,
                    ["at", axis] => Some(axis.to_string()),
                    _ => return Err(bad(line, "expected `at AXIS` or `at compile-time`")),
                };
                let layout = line[open + 1..close].split_whitespace().map(str::to_string).collect();
                Ok(Step::Pack { tensor: name(1)?, layout, at })
            }
            Some("cache_write") if words.len() == 4 && words[2] == "at" => {
                Ok(Step::CacheWrite { tensor: name(1)?, at: name(3)? })
            }
            Some("compute_at") if words.len() == 3 => Ok(Step::ComputeAt { stage: name(1)?, at: name(2)? }),
            _ => Err(bad(line, "unknown step or wrong number of words")),
        }
    }
}

/// A schedule: steps applied in order to a domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    pub steps: Vec<Step>,
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{step}")?;
        }
        Ok(())
    }
}

impl FromStr for Schedule {
    type Err = CodegenError;
    /// One step per line (or separated by `;`); blank lines and `#` comments are ignored.
    fn from_str(text: &str) -> Result<Schedule, CodegenError> {
        let steps = text
            .split(['\n', ';'])
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        Ok(Schedule { steps })
    }
}

impl Schedule {
    /// The first step matching `pick`, or an error naming what the template expected.
    pub fn find<T>(&self, what: &str, pick: impl Fn(&Step) -> Option<T>) -> Result<T, CodegenError> {
        self.steps
            .iter()
            .find_map(pick)
            .ok_or_else(|| CodegenError::Schedule(format!("the schedule lacks the step this template needs: {what}")))
    }
}

impl Schedule {
    /// A fixed template's schedule from its step lines.
    pub fn fixed(lines: &[String]) -> Schedule {
        lines.join("\n").parse().expect("templates write well-formed steps")
    }
}

/// The domain and schedule of an element-wise kernel over `shape` (last axis innermost):
/// outer axes fused into rows split among threads, the last axis vectorised.
pub fn elementwise(
    name: &str,
    shape: &[usize],
    body: &str,
    inputs: Vec<Access>,
    max_threads: usize,
) -> (Domain, Schedule) {
    elementwise_lanes(name, shape, body, inputs, max_threads, 4)
}

/// [`elementwise`] with the innermost axis vectorised by `lanes` (1: scalar code, no
/// `vectorize` step).
pub fn elementwise_lanes(
    name: &str,
    shape: &[usize],
    body: &str,
    inputs: Vec<Access>,
    max_threads: usize,
    lanes: usize,
) -> (Domain, Schedule) {
    let names: Vec<String> = (0..shape.len()).map(|i| format!("d{i}")).collect();
    let axes: Vec<(&str, usize)> = names.iter().map(String::as_str).zip(shape.iter().copied()).collect();
    let index: Vec<&str> = names.iter().map(String::as_str).collect();
    let domain = Domain::new(name, &axes, &[]).computing(access("out", &index), inputs, body);
    let mut lines = Vec::new();
    if let Some((last, outer)) = names.split_last() {
        if !outer.is_empty() {
            lines.push(format!("fuse {} into rows", outer.join(" ")));
            lines.push(format!("parallel rows {max_threads}"));
        }
        if lanes > 1 {
            lines.push(format!("vectorize {last} {lanes}"));
        }
    }
    (domain, Schedule::fixed(&lines))
}

/// The domain and schedule of a kernel working on whole rows of a `[rows, len]` view (softmax,
/// layer normalisation, reductions, global pooling): rows split among threads, each row's
/// `len` elements vectorised.
pub fn row_kernel(name: &str, rows: usize, len: usize, body: &str, max_threads: usize) -> (Domain, Schedule) {
    let domain = Domain::new(name, &[("r", rows)], &[("i", len)]).computing(
        access("out", &["r"]),
        vec![access("x", &["r", "i"])],
        body,
    );
    let lines = [format!("parallel r {max_threads}"), "vectorize i 4".to_string(), "cache_write out at r".to_string()];
    (domain, Schedule::fixed(&lines))
}

/// A domain and schedule shown as text: the domain line, then one step per line.
pub fn describe((domain, schedule): (Domain, Schedule)) -> String {
    format!("{domain}\n{schedule}")
}
