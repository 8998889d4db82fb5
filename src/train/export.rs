//! Writes a trained [`Network`] as an ONNX graph that computes exactly
//! `Network::forward` followed by a temperature-scaled softmax per head:
//!
//! ```text
//! pooled = mask · (idf⊙emb)[ids] / max(√(mask · idf²[ids]), ε);  hidden = Relu(Gemm(pooled))
//! per head: Softmax(Gemm(Concat(pooled, hidden)) / T) ─► product, category, …
//! ```

use prost::Message;

use crate::train::network::{Network, NORM_EPS};
use crate::train::onnx_proto::*;

pub const INPUT_IDS: &str = "input_ids";
pub const ATTENTION_MASK: &str = "attention_mask";
const OPSET: i64 = 17;

fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    let mut raw = Vec::with_capacity(data.len() * 4);
    for v in data {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    TensorProto {
        dims: dims.to_vec(),
        data_type: DT_FLOAT,
        name: name.to_owned(),
        raw_data: raw,
    }
}

fn tensor_i64(name: &str, data: &[i64]) -> TensorProto {
    let mut raw = Vec::with_capacity(data.len() * 8);
    for v in data {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    TensorProto {
        dims: vec![data.len() as i64],
        data_type: DT_INT64,
        name: name.to_owned(),
        raw_data: raw,
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_owned()],
        name: format!("{op}_{output}"),
        op_type: op.to_owned(),
        attribute: attrs,
        domain: String::new(),
    }
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        i: v,
        r#type: ATTR_INT,
        ..Default::default()
    }
}

fn value_info(name: &str, elem: i32, dims: &[Result<i64, &str>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Ok(v) => Dimension {
                dim_value: Some(*v),
                dim_param: None,
            },
            Err(p) => Dimension {
                dim_value: None,
                dim_param: Some(p.to_string()),
            },
        })
        .collect();
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: elem,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

/// `idf[v] · emb[v, :]` for every row.
fn scaled_embedding(net: &Network) -> Vec<f32> {
    let d = net.dim;
    net.emb
        .chunks(d)
        .zip(&net.idf)
        .flat_map(|(row, w)| row.iter().map(move |x| x * w))
        .collect()
}

/// One exported head: output tensor name and softmax temperature.
pub struct ExportHead<'a> {
    pub output: &'a str,
    pub temperature: f32,
}

/// Serialise `net` as ONNX bytes.
pub fn export_onnx(net: &Network, heads: &[ExportHead], model_name: &str) -> Vec<u8> {
    let (v, d, h) = (net.vocab as i64, net.dim as i64, net.hidden as i64);
    let mut init = vec![
        // IDF folded into the embedding rows, so pooling is one batched MatMul with the mask.
        tensor_f32("emb_idf", &[v, d], &scaled_embedding(net)),
        tensor_f32(
            "idf_sq",
            &[v],
            &net.idf.iter().map(|w| w * w).collect::<Vec<_>>(),
        ),
        tensor_f32("eps", &[], &[NORM_EPS]),
        tensor_f32("w1", &[d, h], &net.w1),
        tensor_f32("b1", &[h], &net.b1),
        tensor_i64("axis_tokens", &[1]),
    ];
    let mut nodes = vec![
        node(
            "Gather",
            &["emb_idf", INPUT_IDS],
            "gathered",
            vec![int_attr("axis", 0)],
        ),
        node(
            "Cast",
            &[ATTENTION_MASK],
            "mask_f",
            vec![int_attr("to", DT_FLOAT as i64)],
        ),
        node("Unsqueeze", &["mask_f", "axis_tokens"], "mask_row", vec![]),
        node("MatMul", &["mask_row", "gathered"], "summed_3d", vec![]),
        node("Squeeze", &["summed_3d", "axis_tokens"], "summed", vec![]),
        node(
            "Gather",
            &["idf_sq", INPUT_IDS],
            "idf_sq_w",
            vec![int_attr("axis", 0)],
        ),
        node("Mul", &["idf_sq_w", "mask_f"], "weights_sq", vec![]),
        node(
            "ReduceSum",
            &["weights_sq", "axis_tokens"],
            "weights_sq_sum",
            vec![int_attr("keepdims", 1)],
        ),
        node("Sqrt", &["weights_sq_sum"], "norm", vec![]),
        node("Max", &["norm", "eps"], "norm_safe", vec![]),
        node("Div", &["summed", "norm_safe"], "pooled", vec![]),
        node("Gemm", &["pooled", "w1", "b1"], "pre", vec![]),
        node("Relu", &["pre"], "hidden", vec![]),
        node(
            "Concat",
            &["pooled", "hidden"],
            "features",
            vec![int_attr("axis", 1)],
        ),
    ];
    let mut outputs = Vec::new();
    for (k, (head, spec)) in net.heads.iter().zip(heads).enumerate() {
        let c = head.classes as i64;
        let (w, b, t) = (
            format!("head{k}_w"),
            format!("head{k}_b"),
            format!("head{k}_temperature"),
        );
        init.push(tensor_f32(&w, &[d + h, c], &head.w));
        init.push(tensor_f32(&b, &[c], &head.b));
        init.push(tensor_f32(&t, &[], &[spec.temperature]));
        let logits = format!("head{k}_logits");
        let scaled = format!("head{k}_scaled");
        nodes.push(node("Gemm", &["features", &w, &b], &logits, vec![]));
        nodes.push(node("Div", &[&logits, &t], &scaled, vec![]));
        nodes.push(node(
            "Softmax",
            &[&scaled],
            spec.output,
            vec![int_attr("axis", -1)],
        ));
        outputs.push(value_info(spec.output, DT_FLOAT, &[Err("batch"), Ok(c)]));
    }
    let graph = GraphProto {
        node: nodes,
        name: model_name.to_owned(),
        initializer: init,
        doc_string: "TF-IDF pooled feature embeddings + ReLU layer → one softmax head per axis"
            .into(),
        input: vec![
            value_info(INPUT_IDS, DT_INT64, &[Err("batch"), Err("tokens")]),
            value_info(ATTENTION_MASK, DT_INT64, &[Err("batch"), Err("tokens")]),
        ],
        output: outputs,
    };
    let model = ModelProto {
        ir_version: 8,
        producer_name: "complaint-triage".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: String::new(),
        model_version: 1,
        doc_string: String::new(),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: vec![],
    };
    model.encode_to_vec()
}
