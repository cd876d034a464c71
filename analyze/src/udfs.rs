//! Helper SQL functions of the checks, registered in one place ([`register_udfs`]).
//!
//! - `hex_id(id)`: an id as lowercase hex: binary ids as they are (`trace_id`, `*_raw`), span ids
//!   (`uint64`) as 16 digits. The findings and the CLI show every id this way.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::{DataType, UInt64Type};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;

/// Registers every helper function on a session.
pub fn register_udfs(context: &SessionContext) {
    context.register_udf(ScalarUDF::from(HexId::default()));
}

/// `hex_id(id) -> string`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HexId {
    signature: Signature,
}

impl Default for HexId {
    fn default() -> Self {
        HexId { signature: Signature::any(1, Volatility::Immutable) }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ScalarUDFImpl for HexId {
    fn name(&self) -> &str {
        "hex_id"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let Some(input) = args.args.into_iter().next() else { return exec_err!("hex_id takes one argument") };
        let array = input.into_array(rows)?;
        let mut out = StringBuilder::with_capacity(array.len(), array.len() * 32);
        match array.data_type() {
            DataType::UInt64 => {
                let ids = array.as_primitive::<UInt64Type>();
                for row in 0..ids.len() {
                    out.append_option(ids.is_valid(row).then(|| format!("{:016x}", ids.value(row))));
                }
            }
            DataType::FixedSizeBinary(_)
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::Null => {
                // Every binary form reads the same once cast to plain binary.
                let binary = arrow::compute::cast(&array, &DataType::Binary)?;
                let ids = binary.as_binary::<i32>();
                for row in 0..ids.len() {
                    out.append_option(ids.is_valid(row).then(|| hex(ids.value(row))));
                }
            }
            other => return exec_err!("hex_id takes a binary id or a uint64 span id, not {other}"),
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}
