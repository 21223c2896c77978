//! Multi-layer, optionally bidirectional recurrent layers with PyTorch's
//! semantics: [`Rnn`] (`torch.nn.RNN`), [`Lstm`] (`torch.nn.LSTM`) and
//! [`Gru`] (`torch.nn.GRU`).
//!
//! Burn's own `Lstm`/`Gru` are single-layer and keep one `Linear` pair per
//! gate; these layers instead hold PyTorch's fused per-layer matrices so that
//! PyTorch weights load without reshaping, and implement PyTorch's equations
//! directly (with `x` the layer input, `h` the previous hidden state and
//! `σ` the logistic sigmoid):
//!
//! - RNN: `h' = act(W_ih x + b_ih + W_hh h + b_hh)`, `act` = tanh or ReLU.
//! - LSTM, gate rows in the order `i, f, g, o`:
//!   `i = σ(..)`, `f = σ(..)`, `g = tanh(..)`, `o = σ(..)` where each `(..)` is
//!   that gate's slice of `W_ih x + b_ih + W_hh h + b_hh`;
//!   `c' = f * c + i * g`, `h' = o * tanh(c')`.
//! - GRU, gate rows in the order `r, z, n`:
//!   `r = σ(W_ir x + b_ir + W_hr h + b_hr)`, `z = σ(W_iz x + b_iz + W_hz h + b_hz)`,
//!   `n = tanh(W_in x + b_in + r * (W_hn h + b_hn))` (the reset gate multiplies
//!   the hidden projection *after* its bias is added), `h' = (1 - z) * n + z * h`.
//!
//! # Parameter names and the PyTorch mapping
//!
//! Each module holds `layers: Vec<RecurrentLayer>`; layer `k` holds a
//! `forward` direction and, when bidirectional, a `reverse` direction, each a
//! [`RecurrentWeights`] with `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`.
//! The rule is
//!
//! | unidl parameter path           | PyTorch state-dict key   |
//! |--------------------------------|--------------------------|
//! | `layers.{k}.forward.{name}`    | `{name}_l{k}`            |
//! | `layers.{k}.reverse.{name}`    | `{name}_l{k}_reverse`    |
//!
//! for `name` in `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, with
//! identical shapes and row order (no transposition, no gate reordering):
//! `weight_ih` is `[G*H, I_k]`, `weight_hh` is `[G*H, H]`, the biases `[G*H]`,
//! where `G` = 1 (RNN), 4 (LSTM), 3 (GRU), `H` = `hidden_size` and
//! `I_k` = `input_size` for `k = 0`, `D*H` above (`D` = 2 if bidirectional,
//! else 1). [`torch_param_name`] and [`unidl_param_path`] apply the rule.
//!
//! Initialisation follows PyTorch: every weight and bias is drawn from
//! `U(-1/sqrt(H), 1/sqrt(H))`.
//!
//! Not supported: LSTM `proj_size`, unbatched (2-D) inputs, packed sequences.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};

/// The parameters of one direction of one recurrent layer, laid out as in PyTorch.
///
/// `G` below is the number of gates (1 for RNN, 4 for LSTM in the order
/// `i, f, g, o`, 3 for GRU in the order `r, z, n`).
#[derive(Module, Debug)]
pub struct RecurrentWeights {
    /// Input-to-hidden weights, `[G*H, I]` (PyTorch `weight_ih_l{k}`).
    pub weight_ih: Param<Tensor<2>>,
    /// Hidden-to-hidden weights, `[G*H, H]` (PyTorch `weight_hh_l{k}`).
    pub weight_hh: Param<Tensor<2>>,
    /// Input-to-hidden bias, `[G*H]`, absent when `bias = false` (PyTorch `bias_ih_l{k}`).
    pub bias_ih: Option<Param<Tensor<1>>>,
    /// Hidden-to-hidden bias, `[G*H]`, absent when `bias = false` (PyTorch `bias_hh_l{k}`).
    pub bias_hh: Option<Param<Tensor<1>>>,
}

impl RecurrentWeights {
    fn init(gates: usize, input: usize, hidden: usize, bias: bool, device: &Device) -> Self {
        let k = 1.0 / (hidden as f64).sqrt();
        let init = Initializer::Uniform { min: -k, max: k };
        let rows = gates * hidden;
        Self {
            weight_ih: init.init([rows, input], device),
            weight_hh: init.init([rows, hidden], device),
            bias_ih: bias.then(|| init.init([rows], device)),
            bias_hh: bias.then(|| init.init([rows], device)),
        }
    }
}

/// One layer of a recurrent stack: a forward direction and, when
/// bidirectional, a reverse direction (PyTorch's `_reverse` parameters).
#[derive(Module, Debug)]
pub struct RecurrentLayer {
    /// Parameters of the direction that reads the sequence from first to last step.
    pub forward: RecurrentWeights,
    /// Parameters of the direction that reads the sequence from last to first step.
    pub reverse: Option<RecurrentWeights>,
}

/// Maps a unidl parameter path of a recurrent module to its PyTorch state-dict key:
/// `layers.{k}.forward.{name}` → `{name}_l{k}` and `layers.{k}.reverse.{name}` →
/// `{name}_l{k}_reverse`. Returns `None` for anything else.
///
/// A leading prefix (e.g. `encoder.lstm.`) is kept: `encoder.lstm.layers.0.forward.weight_ih`
/// → `encoder.lstm.weight_ih_l0`.
pub fn torch_param_name(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('.').collect();
    let [prefix @ .., "layers", k, dir, name] = parts.as_slice() else {
        return None;
    };
    if !PARAM_NAMES.contains(name) || k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let k: usize = k.parse().ok()?;
    let suffix = match *dir {
        "forward" => "",
        "reverse" => "_reverse",
        _ => return None,
    };
    let prefix: String = prefix.iter().map(|p| format!("{p}.")).collect();
    Some(format!("{prefix}{name}_l{k}{suffix}"))
}

/// The inverse of [`torch_param_name`]: `{name}_l{k}[_reverse]` →
/// `layers.{k}.{forward|reverse}.{name}`, keeping any leading prefix.
pub fn unidl_param_path(torch_key: &str) -> Option<String> {
    let (prefix, leaf) = match torch_key.rfind('.') {
        Some(i) => (&torch_key[..=i], &torch_key[i + 1..]),
        None => ("", torch_key),
    };
    let (leaf, dir) = match leaf.strip_suffix("_reverse") {
        Some(stripped) => (stripped, "reverse"),
        None => (leaf, "forward"),
    };
    let (name, k) = leaf.rsplit_once("_l")?;
    if !PARAM_NAMES.contains(&name) || k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let k: usize = k.parse().ok()?;
    Some(format!("{prefix}layers.{k}.{dir}.{name}"))
}

const PARAM_NAMES: [&str; 4] = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"];

/// The recurrence computed by a stack.
#[derive(Clone, Copy, Debug)]
enum Cell {
    Rnn(RnnNonlinearity),
    Lstm,
    Gru,
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Rnn(_) => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

/// Shared description of a stack, borrowed from the public modules.
struct Stack<'a> {
    cell: Cell,
    layers: &'a [RecurrentLayer],
    dropout: &'a Dropout,
    input_size: usize,
    hidden_size: usize,
    bidirectional: bool,
    batch_first: bool,
}

fn init_layers(
    gates: usize,
    input_size: usize,
    hidden_size: usize,
    num_layers: usize,
    bidirectional: bool,
    bias: bool,
    device: &Device,
) -> Vec<RecurrentLayer> {
    assert!(num_layers > 0, "num_layers must be at least 1");
    assert!(hidden_size > 0, "hidden_size must be at least 1");
    let dirs = if bidirectional { 2 } else { 1 };
    (0..num_layers)
        .map(|k| {
            let input = if k == 0 {
                input_size
            } else {
                dirs * hidden_size
            };
            RecurrentLayer {
                forward: RecurrentWeights::init(gates, input, hidden_size, bias, device),
                reverse: bidirectional
                    .then(|| RecurrentWeights::init(gates, input, hidden_size, bias, device)),
            }
        })
        .collect()
}

/// Result of running one direction: output sequence `[B, T, H]`, last hidden
/// state `[B, H]` and, for LSTM, last cell state `[B, H]`.
type DirectionOutput = (Tensor<3>, Tensor<2>, Option<Tensor<2>>);

fn run_direction(
    weights: &RecurrentWeights,
    cell: Cell,
    input: Tensor<3>,
    h0: Tensor<2>,
    c0: Option<Tensor<2>>,
    reverse: bool,
) -> DirectionOutput {
    let [batch, steps, features] = input.dims();
    let [_, hidden] = h0.dims();
    let rows = cell.gates() * hidden;

    // Input projections of every time step at once: [B, T, G*H].
    let mut projected = input
        .reshape([batch * steps, features])
        .matmul(weights.weight_ih.val().transpose());
    if let Some(bias) = &weights.bias_ih {
        projected = projected + bias.val().unsqueeze_dim(0);
    }
    let projected = projected.reshape([batch, steps, rows]);

    let weight_hh_t = weights.weight_hh.val().transpose();
    let bias_hh: Option<Tensor<2>> = weights.bias_hh.as_ref().map(|b| b.val().unsqueeze_dim(0));

    let mut h = h0;
    let mut c = c0;
    let mut outputs: Vec<Option<Tensor<2>>> = vec![None; steps];
    for step in 0..steps {
        let t = if reverse { steps - 1 - step } else { step };
        let gi: Tensor<2> = projected
            .clone()
            .slice_dim(1, t..t + 1)
            .reshape([batch, rows]);
        let mut gh = h.clone().matmul(weight_hh_t.clone());
        if let Some(b) = &bias_hh {
            gh = gh + b.clone();
        }
        h = match cell {
            Cell::Rnn(RnnNonlinearity::Tanh) => (gi + gh).tanh(),
            Cell::Rnn(RnnNonlinearity::Relu) => relu(gi + gh),
            Cell::Lstm => {
                let gates = gi + gh;
                let i = sigmoid(gates.clone().narrow(1, 0, hidden));
                let f = sigmoid(gates.clone().narrow(1, hidden, hidden));
                let g = gates.clone().narrow(1, 2 * hidden, hidden).tanh();
                let o = sigmoid(gates.narrow(1, 3 * hidden, hidden));
                let c_prev = c.take().expect("LSTM cell state");
                let c_new = f * c_prev + i * g;
                let h_new = o * c_new.clone().tanh();
                c = Some(c_new);
                h_new
            }
            Cell::Gru => {
                let r = sigmoid(gi.clone().narrow(1, 0, hidden) + gh.clone().narrow(1, 0, hidden));
                let z = sigmoid(
                    gi.clone().narrow(1, hidden, hidden) + gh.clone().narrow(1, hidden, hidden),
                );
                let n = (gi.narrow(1, 2 * hidden, hidden) + r * gh.narrow(1, 2 * hidden, hidden))
                    .tanh();
                // (1 - z) * n + z * h  ==  n + z * (h - n)
                n.clone() + z * (h - n)
            }
        };
        outputs[t] = Some(h.clone());
    }
    let outputs = outputs
        .into_iter()
        .map(|o| o.expect("every step ran"))
        .collect();
    (Tensor::stack(outputs, 1), h, c)
}

impl Stack<'_> {
    fn dirs(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Runs the stack. `h0`/`c0` are `[L*D, B, H]`. Returns the output sequence
    /// (in the caller's layout), `h_n` and, for LSTM, `c_n` (both `[L*D, B, H]`).
    fn run(
        &self,
        input: Tensor<3>,
        h0: Option<Tensor<3>>,
        c0: Option<Tensor<3>>,
    ) -> (Tensor<3>, Tensor<3>, Option<Tensor<3>>) {
        let input = if self.batch_first {
            input
        } else {
            input.swap_dims(0, 1)
        };
        let [batch, steps, features] = input.dims();
        assert!(steps > 0, "recurrent layers need at least one time step");
        assert_eq!(
            features, self.input_size,
            "input feature size {features} differs from input_size {}",
            self.input_size
        );
        let hidden = self.hidden_size;
        let states = self.layers.len() * self.dirs();
        for (what, state) in [("h0", &h0), ("c0", &c0)] {
            if let Some(state) = state {
                assert_eq!(
                    state.dims(),
                    [states, batch, hidden],
                    "{what} must be [num_layers * num_directions, batch, hidden_size]"
                );
            }
        }
        let is_lstm = matches!(self.cell, Cell::Lstm);
        let device = input.device();
        let initial = |state: &Option<Tensor<3>>, index: usize| -> Tensor<2> {
            match state {
                Some(s) => s
                    .clone()
                    .slice_dim(0, index..index + 1)
                    .reshape([batch, hidden]),
                None => Tensor::zeros([batch, hidden], &device),
            }
        };

        let mut x = input;
        let mut h_n = Vec::with_capacity(states);
        let mut c_n = Vec::with_capacity(states);
        for (k, layer) in self.layers.iter().enumerate() {
            let directions = std::iter::once((&layer.forward, false))
                .chain(layer.reverse.as_ref().map(|w| (w, true)));
            let mut outs = Vec::with_capacity(2);
            for (d, (weights, reverse)) in directions.enumerate() {
                let index = k * self.dirs() + d;
                let c_init = is_lstm.then(|| initial(&c0, index));
                let (out, h, c) = run_direction(
                    weights,
                    self.cell,
                    x.clone(),
                    initial(&h0, index),
                    c_init,
                    reverse,
                );
                outs.push(out);
                h_n.push(h);
                if let Some(c) = c {
                    c_n.push(c);
                }
            }
            let out = if outs.len() == 1 {
                outs.pop().expect("one direction")
            } else {
                Tensor::cat(outs, 2)
            };
            x = if k + 1 < self.layers.len() {
                self.dropout.forward(out)
            } else {
                out
            };
        }
        let output = if self.batch_first {
            x
        } else {
            x.swap_dims(0, 1)
        };
        let c_n = is_lstm.then(|| Tensor::stack(c_n, 0));
        (output, Tensor::stack(h_n, 0), c_n)
    }
}

/// Non-linearity of a plain [`Rnn`] (PyTorch's `nonlinearity` argument).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum RnnNonlinearity {
    /// `tanh` (PyTorch's default).
    Tanh,
    /// `relu`.
    Relu,
}

macro_rules! recurrent_config {
    ($(#[$doc:meta])* $config:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty = $default:literal,)* }) => {
        $(#[$doc])*
        #[derive(Config, Debug)]
        pub struct $config {
            /// Number of features `I` of each input step.
            pub input_size: usize,
            /// Number of features `H` of the hidden state.
            pub hidden_size: usize,
            /// Number of stacked layers; layer `k > 0` reads layer `k-1`'s output.
            #[config(default = 1)]
            pub num_layers: usize,
            /// Run a second, reversed direction in every layer and concatenate both outputs.
            #[config(default = false)]
            pub bidirectional: bool,
            /// Whether the layers have `bias_ih` and `bias_hh`.
            #[config(default = true)]
            pub bias: bool,
            /// Dropout probability applied to the output of every layer except the last
            /// (only in training mode on an autodiff device), as in PyTorch.
            #[config(default = 0.0)]
            pub dropout: f64,
            /// If `true`, inputs and outputs are `[B, T, F]`; if `false` (PyTorch's
            /// default), `[T, B, F]`. States are `[num_layers * D, B, H]` either way.
            #[config(default = false)]
            pub batch_first: bool,
            $($(#[$fdoc])* #[config(default = $default)] pub $field: $ty,)*
        }
    };
}

recurrent_config!(
    /// Configuration of [`Rnn`] (PyTorch `torch.nn.RNN`).
    RnnConfig {
        /// Non-linearity applied to the new hidden state.
        nonlinearity: RnnNonlinearity = "RnnNonlinearity::Tanh",
    }
);
recurrent_config!(
    /// Configuration of [`Lstm`] (PyTorch `torch.nn.LSTM`, without `proj_size`).
    LstmConfig {}
);
recurrent_config!(
    /// Configuration of [`Gru`] (PyTorch `torch.nn.GRU`).
    GruConfig {}
);

macro_rules! recurrent_module {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Module, Debug)]
        pub struct $name {
            /// The layers, first to last; see the [module docs](self) for the PyTorch names.
            pub layers: Vec<RecurrentLayer>,
            /// Dropout between layers.
            pub dropout: Dropout,
            /// Number of features of each input step.
            pub input_size: usize,
            /// Number of features of the hidden state.
            pub hidden_size: usize,
            /// Whether every layer has a reverse direction.
            pub bidirectional: bool,
            /// Whether inputs and outputs are batch-major.
            pub batch_first: bool,
            $($(#[$fdoc])* #[module(skip)] pub $field: $ty,)*
        }

        impl $name {
            /// Number of stacked layers.
            pub fn num_layers(&self) -> usize {
                self.layers.len()
            }

            /// Number of directions `D` (2 if bidirectional, else 1).
            pub fn num_directions(&self) -> usize {
                if self.bidirectional { 2 } else { 1 }
            }

            fn stack(&self, cell: Cell) -> Stack<'_> {
                Stack {
                    cell,
                    layers: &self.layers,
                    dropout: &self.dropout,
                    input_size: self.input_size,
                    hidden_size: self.hidden_size,
                    bidirectional: self.bidirectional,
                    batch_first: self.batch_first,
                }
            }
        }
    };
}

recurrent_module!(
    /// Multi-layer Elman RNN with PyTorch's semantics (`torch.nn.RNN`):
    /// `h' = act(W_ih x + b_ih + W_hh h + b_hh)`.
    Rnn {
        /// Non-linearity applied to the new hidden state.
        nonlinearity: RnnNonlinearity,
    }
);
recurrent_module!(
    /// Multi-layer LSTM with PyTorch's semantics (`torch.nn.LSTM`), gates `i, f, g, o`.
    Lstm {}
);
recurrent_module!(
    /// Multi-layer GRU with PyTorch's semantics (`torch.nn.GRU`), gates `r, z, n`.
    Gru {}
);

impl RnnConfig {
    /// Creates the module with PyTorch's initialisation `U(-1/sqrt(H), 1/sqrt(H))`.
    pub fn init(&self, device: &Device) -> Rnn {
        Rnn {
            layers: init_layers(
                1,
                self.input_size,
                self.hidden_size,
                self.num_layers,
                self.bidirectional,
                self.bias,
                device,
            ),
            dropout: DropoutConfig::new(self.dropout).init(),
            input_size: self.input_size,
            hidden_size: self.hidden_size,
            bidirectional: self.bidirectional,
            batch_first: self.batch_first,
            nonlinearity: self.nonlinearity,
        }
    }
}

impl LstmConfig {
    /// Creates the module with PyTorch's initialisation `U(-1/sqrt(H), 1/sqrt(H))`.
    pub fn init(&self, device: &Device) -> Lstm {
        Lstm {
            layers: init_layers(
                4,
                self.input_size,
                self.hidden_size,
                self.num_layers,
                self.bidirectional,
                self.bias,
                device,
            ),
            dropout: DropoutConfig::new(self.dropout).init(),
            input_size: self.input_size,
            hidden_size: self.hidden_size,
            bidirectional: self.bidirectional,
            batch_first: self.batch_first,
        }
    }
}

impl GruConfig {
    /// Creates the module with PyTorch's initialisation `U(-1/sqrt(H), 1/sqrt(H))`.
    pub fn init(&self, device: &Device) -> Gru {
        Gru {
            layers: init_layers(
                3,
                self.input_size,
                self.hidden_size,
                self.num_layers,
                self.bidirectional,
                self.bias,
                device,
            ),
            dropout: DropoutConfig::new(self.dropout).init(),
            input_size: self.input_size,
            hidden_size: self.hidden_size,
            bidirectional: self.bidirectional,
            batch_first: self.batch_first,
        }
    }
}

impl Rnn {
    /// Runs the sequence through every layer.
    ///
    /// Returns `(output, h_n)`: the last layer's hidden state at every step
    /// (both directions concatenated, forward first) and every layer's final
    /// hidden state (for the reverse direction, the state after reading step 0).
    ///
    /// # Shapes
    ///
    /// With `D` = 2 if bidirectional else 1, `L` = `num_layers`:
    /// - input: `[B, T, I]` if `batch_first`, else `[T, B, I]`
    /// - h0 (zeros if `None`): `[L*D, B, H]`, ordered layer-major then direction
    ///   (`l0`, `l0_reverse`, `l1`, ...)
    /// - output: `[B, T, D*H]` if `batch_first`, else `[T, B, D*H]`
    /// - h_n: `[L*D, B, H]`
    pub fn forward(&self, input: Tensor<3>, h0: Option<Tensor<3>>) -> (Tensor<3>, Tensor<3>) {
        let (output, h_n, _) = self
            .stack(Cell::Rnn(self.nonlinearity))
            .run(input, h0, None);
        (output, h_n)
    }
}

impl Gru {
    /// Runs the sequence through every layer.
    ///
    /// Returns `(output, h_n)` as [`Rnn::forward`] does.
    ///
    /// # Shapes
    ///
    /// With `D` = 2 if bidirectional else 1, `L` = `num_layers`:
    /// - input: `[B, T, I]` if `batch_first`, else `[T, B, I]`
    /// - h0 (zeros if `None`): `[L*D, B, H]` (`l0`, `l0_reverse`, `l1`, ...)
    /// - output: `[B, T, D*H]` if `batch_first`, else `[T, B, D*H]`
    /// - h_n: `[L*D, B, H]`
    pub fn forward(&self, input: Tensor<3>, h0: Option<Tensor<3>>) -> (Tensor<3>, Tensor<3>) {
        let (output, h_n, _) = self.stack(Cell::Gru).run(input, h0, None);
        (output, h_n)
    }
}

/// Hidden and cell states of an [`Lstm`], each `[num_layers * D, B, H]`
/// (PyTorch's `(h, c)` tuple).
#[derive(Debug, Clone)]
pub struct LstmState {
    /// Hidden states `h`.
    pub hidden: Tensor<3>,
    /// Cell states `c`.
    pub cell: Tensor<3>,
}

impl LstmState {
    /// Bundles hidden and cell states.
    pub fn new(hidden: Tensor<3>, cell: Tensor<3>) -> Self {
        Self { hidden, cell }
    }
}

impl Lstm {
    /// Runs the sequence through every layer.
    ///
    /// Returns `(output, LstmState { hidden: h_n, cell: c_n })`.
    ///
    /// # Shapes
    ///
    /// With `D` = 2 if bidirectional else 1, `L` = `num_layers`:
    /// - input: `[B, T, I]` if `batch_first`, else `[T, B, I]`
    /// - state (zeros if `None`): hidden and cell `[L*D, B, H]` (`l0`, `l0_reverse`, `l1`, ...)
    /// - output: `[B, T, D*H]` if `batch_first`, else `[T, B, D*H]`
    /// - returned hidden and cell: `[L*D, B, H]`
    pub fn forward(&self, input: Tensor<3>, state: Option<LstmState>) -> (Tensor<3>, LstmState) {
        let (h0, c0) = match state {
            Some(s) => (Some(s.hidden), Some(s.cell)),
            None => (None, None),
        };
        let (output, h_n, c_n) = self.stack(Cell::Lstm).run(input, h0, c0);
        let c_n = c_n.expect("LSTM returns cell states");
        (output, LstmState::new(h_n, c_n))
    }
}
