//! The GNN, and every line of code that touches burn (pinned at 0.22.1, Flex CPU
//! backend): a directed GraphSAGE with mean aggregation over in- and out-neighbours,
//! mean and log-sum pooling per graph, the workload's global features, and one small
//! MLP head per target. Targets are `log(1 + t)`, standardised (see `train`).

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::IndexingUpdateOp;

use crate::features::{EncodedGraph, GLOBAL_FEATURES, NODE_FEATURES, TARGET_COUNT};

/// The network's shape; stored in the weights file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    pub hidden: usize,
    pub layers: usize,
}

impl Shape {
    /// Bounds that keep a network (and a weights file's claim) to a sane size: 1024
    /// hidden × 16 layers is ~40M parameters per member.
    pub const MAX_HIDDEN: usize = 1024;
    pub const MAX_LAYERS: usize = 16;

    pub fn check(&self) -> Result<(), String> {
        if !(1..=Self::MAX_HIDDEN).contains(&self.hidden) {
            return Err(format!(
                "hidden size {} is outside 1..={}",
                self.hidden,
                Self::MAX_HIDDEN
            ));
        }
        if !(1..=Self::MAX_LAYERS).contains(&self.layers) {
            return Err(format!(
                "{} message-passing layers is outside 1..={}",
                self.layers,
                Self::MAX_LAYERS
            ));
        }
        Ok(())
    }
}

#[derive(Module, Debug)]
pub struct SageLayer {
    own: Linear,
    from_inputs: Linear,
    from_outputs: Linear,
}

/// A target's head: a 2-layer MLP plus a linear path (power laws in the log features,
/// such as clocks = chunks × row blocks × tokens, are linear in log space).
#[derive(Module, Debug)]
pub struct Head {
    hidden: Linear,
    out: Linear,
    linear: Linear,
}

#[derive(Module, Debug)]
pub struct Gnn {
    embed: Linear,
    layers: Vec<SageLayer>,
    heads: Vec<Head>,
}

/// A batch of graphs as tensors on one device.
pub struct Batch {
    pub x: Tensor<2>,
    pub src: Tensor<1, Int>,
    pub dst: Tensor<1, Int>,
    /// 1 / in-degree and 1 / out-degree per node (0 for none), `[nodes, 1]`.
    pub inv_in: Tensor<2>,
    pub inv_out: Tensor<2>,
    /// Graph of each node.
    pub graph: Tensor<1, Int>,
    /// 1 / nodes per graph, `[graphs, 1]`.
    pub inv_size: Tensor<2>,
    pub globals: Tensor<2>,
    pub nodes: usize,
    pub graphs: usize,
}

impl Batch {
    pub fn new(graphs: &[&EncodedGraph], device: &Device) -> Batch {
        let nodes: usize = graphs.iter().map(|g| g.nodes).sum();
        let mut x = Vec::with_capacity(nodes * NODE_FEATURES);
        let (mut src, mut dst, mut graph) = (vec![], vec![], Vec::with_capacity(nodes));
        let (mut deg_in, mut deg_out) = (vec![0f32; nodes], vec![0f32; nodes]);
        let mut globals = Vec::with_capacity(graphs.len() * GLOBAL_FEATURES);
        let mut inv_size = Vec::with_capacity(graphs.len());
        let mut base = 0usize;
        for (i, g) in graphs.iter().enumerate() {
            x.extend_from_slice(&g.x);
            for (&a, &b) in g.src.iter().zip(&g.dst) {
                let (a, b) = (base + a as usize, base + b as usize);
                src.push(a as i64);
                dst.push(b as i64);
                deg_in[b] += 1.0;
                deg_out[a] += 1.0;
            }
            graph.extend(std::iter::repeat_n(i as i64, g.nodes));
            globals.extend_from_slice(&g.globals);
            inv_size.push(1.0 / g.nodes.max(1) as f32);
            base += g.nodes;
        }
        let inv = |d: Vec<f32>| -> Vec<f32> {
            d.into_iter()
                .map(|v| if v > 0.0 { 1.0 / v } else { 0.0 })
                .collect()
        };
        let ints = |v: Vec<i64>| {
            let n = v.len();
            Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device)
        };
        let floats = |v: Vec<f32>, rows: usize, cols: usize| {
            Tensor::<2>::from_data(TensorData::new(v, [rows, cols]), device)
        };
        Batch {
            x: floats(x, nodes, NODE_FEATURES),
            src: ints(src),
            dst: ints(dst),
            inv_in: floats(inv(deg_in), nodes, 1),
            inv_out: floats(inv(deg_out), nodes, 1),
            graph: ints(graph),
            inv_size: floats(inv_size, graphs.len(), 1),
            globals: floats(globals, graphs.len(), GLOBAL_FEATURES),
            nodes,
            graphs: graphs.len(),
        }
    }
}

impl Gnn {
    pub fn new(shape: Shape, device: &Device) -> Gnn {
        let h = shape.hidden;
        let pooled = 2 * h + GLOBAL_FEATURES;
        Gnn {
            embed: LinearConfig::new(NODE_FEATURES, h).init(device),
            layers: (0..shape.layers)
                .map(|_| SageLayer {
                    own: LinearConfig::new(h, h).init(device),
                    from_inputs: LinearConfig::new(h, h).with_bias(false).init(device),
                    from_outputs: LinearConfig::new(h, h).with_bias(false).init(device),
                })
                .collect(),
            heads: (0..TARGET_COUNT)
                .map(|_| Head {
                    hidden: LinearConfig::new(pooled, h).init(device),
                    out: LinearConfig::new(h, 1).init(device),
                    linear: LinearConfig::new(pooled, 1).init(device),
                })
                .collect(),
        }
    }

    /// Standardised log-targets, `[graphs, TARGET_COUNT]`.
    pub fn forward(&self, b: &Batch) -> Tensor<2> {
        let device = b.x.device();
        let mut h = relu(self.embed.forward(b.x.clone()));
        let width = h.dims()[1];
        for layer in &self.layers {
            let zeros = Tensor::<2>::zeros([b.nodes, width], &device);
            let from_src = h.clone().select(0, b.src.clone());
            let from_dst = h.clone().select(0, b.dst.clone());
            let inputs =
                zeros
                    .clone()
                    .select_assign(0, b.dst.clone(), from_src, IndexingUpdateOp::Add)
                    * b.inv_in.clone();
            let outputs = zeros.select_assign(0, b.src.clone(), from_dst, IndexingUpdateOp::Add)
                * b.inv_out.clone();
            h = relu(
                layer.own.forward(h)
                    + layer.from_inputs.forward(inputs)
                    + layer.from_outputs.forward(outputs),
            );
        }
        let sum = Tensor::<2>::zeros([b.graphs, width], &device).select_assign(
            0,
            b.graph.clone(),
            h,
            IndexingUpdateOp::Add,
        );
        let mean = sum.clone() * b.inv_size.clone();
        let log_sum = sum.log1p();
        let pooled = Tensor::cat(vec![mean, log_sum, b.globals.clone()], 1);
        let outs = self
            .heads
            .iter()
            .map(|head| {
                head.out.forward(relu(head.hidden.forward(pooled.clone())))
                    + head.linear.forward(pooled.clone())
            })
            .collect();
        Tensor::cat(outs, 1)
    }

    /// Every parameter value, flattened in visit order.
    pub fn parameters(&self) -> Vec<f32> {
        struct Collect(Vec<f32>);
        impl ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let data = param.val().into_data();
                self.0
                    .extend(data.try_to_vec::<f32>().expect("f32 parameters"));
            }
        }
        let mut c = Collect(vec![]);
        self.visit(&mut c);
        c.0
    }

    /// Replace every parameter from `values` (the order of [`Gnn::parameters`]).
    pub fn with_parameters(self, values: &[f32]) -> Result<Gnn, String> {
        struct Load<'a> {
            values: &'a [f32],
            at: usize,
            short: bool,
        }
        impl ModuleMapper for Load<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let values = self.values;
                let at = self.at;
                let mut short = false;
                let param = param.map(|t| {
                    let shape = t.shape();
                    let n = shape.num_elements();
                    if at + n > values.len() {
                        short = true;
                        return t;
                    }
                    Tensor::from_data(
                        TensorData::new(values[at..at + n].to_vec(), shape),
                        &t.device(),
                    )
                });
                self.short |= short;
                self.at += param.val().shape().num_elements();
                param
            }
        }
        let mut load = Load {
            values,
            at: 0,
            short: false,
        };
        let model = self.map(&mut load);
        if load.short || load.at != values.len() {
            return Err(format!(
                "the weights hold {} values; this network has {}",
                values.len(),
                load.at
            ));
        }
        Ok(model)
    }
}

/// One optimisation step on a batch; returns the loss.
pub struct Trainer {
    pub model: Gnn,
    optim: burn::optim::ModuleOptimizer,
}

impl Trainer {
    pub fn new(model: Gnn, weight_decay: f64) -> Trainer {
        let optim = AdamConfig::new()
            .with_weight_decay(Some(burn::optim::decay::WeightDecayConfig::new(
                weight_decay as f32,
            )))
            .init();
        Trainer { model, optim }
    }

    /// `targets` and `mask` are `[graphs, TARGET_COUNT]` (mask 1 where a target exists).
    pub fn step(&mut self, batch: &Batch, targets: Tensor<2>, mask: Tensor<2>, lr: f64) -> f64 {
        let pred = self.model.forward(batch);
        let loss = masked_mse(pred, targets, mask);
        let value = loss.clone().into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        // `step` consumes the model; tensors are reference-counted, so the clone is cheap.
        self.model = self.optim.step(lr, self.model.clone(), grads);
        value
    }

    /// The loss on a batch with the model in inference mode (no gradients kept).
    pub fn validation_loss(&self, batch: &Batch, targets: Tensor<2>, mask: Tensor<2>) -> f64 {
        let pred = self.model.valid().forward(batch);
        masked_mse(pred, targets, mask).into_scalar::<f32>() as f64
    }
}

pub fn masked_mse(pred: Tensor<2>, targets: Tensor<2>, mask: Tensor<2>) -> Tensor<1> {
    let diff = (pred - targets) * mask.clone();
    let n = mask.sum().clamp_min(1.0);
    (diff.clone() * diff).sum() / n
}

/// The CPU device for inference and (with autodiff) for training.
pub fn device(training: bool) -> Device {
    let d = Device::flex();
    if training {
        d.autodiff()
    } else {
        d
    }
}

/// Floats to a `[rows, cols]` tensor.
pub fn matrix(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// A `[rows, cols]` tensor back to floats.
pub fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 tensor")
}
