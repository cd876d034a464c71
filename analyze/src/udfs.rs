//! Helper SQL functions of the checks, registered in one place ([`register_udfs`]).
//!
//! - `hex_id(id)`: an id as lowercase hex: binary ids as they are (`trace_id`, `*_raw`), span ids
//!   (`uint64`) as 16 digits. The findings and the CLI show every id this way.
//! - `byte_length(id)`: the number of bytes of a binary id (`*_raw`): its length as received, found
//!   without writing it out in hex.
//! - `id_problem(text, 'trace' | 'span')`: what is wrong with a hex id received in a header (`not
//!   hex`, `all zero`, `17 hex digits, expected 16 or 32`, ...), null when it is valid.
//! - `b3_part(header, part)`: a part of a single `b3` header (`trace_id`, `span_id`, `sampled`,
//!   `parent_span_id`), or `problem`: what makes it malformed, null when well-formed.
//! - `linked_spans_of_links(links)`: a `links` column as `linked_spans` (schema version 5) holds
//!   it, for files written before version 5 (`crate::linked_spans`).
//! - `traceparent_part(header, part)`: a part of a W3C `traceparent` (`version`, `trace_id`,
//!   `parent_id`, `flags`), or `problem`, null when valid.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringBuilder};
use arrow::datatypes::{DataType, UInt64Type};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;

/// Every helper function of the checks. A distributed engine registers the same list on each of
/// its processes (plans carry functions by name).
pub fn helper_functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(HexId::default()),
        ScalarUDF::from(ByteLength::default()),
        ScalarUDF::from(TextFunction::new("id_problem", id_problem_of)),
        ScalarUDF::from(TextFunction::new("b3_part", b3_part)),
        ScalarUDF::from(TextFunction::new("traceparent_part", traceparent_part)),
        ScalarUDF::from(crate::linked_spans::LinkedSpansOfLinks::default()),
    ]
}

/// Registers every helper function on a session.
pub fn register_udfs(context: &SessionContext) {
    for function in helper_functions() {
        context.register_udf(function);
    }
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

const HEX_DIGITS: [u8; 16] = *b"0123456789abcdef";

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
        // Written digit by digit into one buffer: this runs on every span of several checks, and
        // a `String` per row cost more than the rest of the function.
        let mut out = StringBuilder::with_capacity(array.len(), array.len() * 32);
        let mut digits = Vec::with_capacity(64);
        let mut append = |out: &mut StringBuilder, bytes: Option<&[u8]>| match bytes {
            Some(bytes) => {
                digits.clear();
                for byte in bytes {
                    digits.push(HEX_DIGITS[usize::from(byte >> 4)]);
                    digits.push(HEX_DIGITS[usize::from(byte & 0x0f)]);
                }
                // Only ASCII digits were written.
                out.append_value(std::str::from_utf8(&digits).unwrap_or_default());
            }
            None => out.append_null(),
        };
        match array.data_type() {
            DataType::UInt64 => {
                let ids = array.as_primitive::<UInt64Type>();
                for row in 0..ids.len() {
                    let bytes = ids.value(row).to_be_bytes();
                    append(&mut out, ids.is_valid(row).then_some(&bytes[..]));
                }
            }
            DataType::FixedSizeBinary(_) => {
                let ids = array.as_fixed_size_binary();
                for row in 0..ids.len() {
                    append(&mut out, ids.is_valid(row).then(|| ids.value(row)));
                }
            }
            DataType::Binary => {
                let ids = array.as_binary::<i32>();
                for row in 0..ids.len() {
                    append(&mut out, ids.is_valid(row).then(|| ids.value(row)));
                }
            }
            DataType::LargeBinary | DataType::BinaryView | DataType::Null => {
                // Rarer forms read the same once cast to plain binary.
                let binary = arrow::compute::cast(&array, &DataType::Binary)?;
                let ids = binary.as_binary::<i32>();
                for row in 0..ids.len() {
                    append(&mut out, ids.is_valid(row).then(|| ids.value(row)));
                }
            }
            other => return exec_err!("hex_id takes a binary id or a uint64 span id, not {other}"),
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

/// `byte_length(id) -> bigint`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ByteLength {
    signature: Signature,
}

impl Default for ByteLength {
    fn default() -> Self {
        ByteLength { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for ByteLength {
    fn name(&self) -> &str {
        "byte_length"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let Some(input) = args.args.into_iter().next() else { return exec_err!("byte_length takes one argument") };
        let array = input.into_array(rows)?;
        let binary = match array.data_type() {
            DataType::Binary => array,
            DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) | DataType::Null => {
                arrow::compute::cast(&array, &DataType::Binary)?
            }
            other => return exec_err!("byte_length takes a binary id, not {other}"),
        };
        let ids = binary.as_binary::<i32>();
        let lengths: Int64Array =
            (0..ids.len()).map(|row| ids.is_valid(row).then(|| ids.value(row).len() as i64)).collect();
        Ok(ColumnarValue::Array(Arc::new(lengths) as ArrayRef))
    }
}

/// What is wrong with a hex id of a propagation header, if anything. `kind` is `trace` (16 or 32
/// digits) or `span` (16 digits).
pub fn id_problem(text: &str, kind: &str) -> Option<String> {
    let expected: &[usize] = if kind == "trace" { &[16, 32] } else { &[16] };
    if text.is_empty() {
        return Some("empty".into());
    }
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(format!("{text:?} is not hex"));
    }
    if !expected.contains(&text.len()) {
        let expected = if kind == "trace" { "16 or 32" } else { "16" };
        return Some(format!("{} hex digits, expected {expected}", text.len()));
    }
    if text.bytes().all(|b| b == b'0') {
        return Some("all zero".into());
    }
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("upper-case hex (the formats require lower case)".into());
    }
    None
}

fn id_problem_of(text: &str, kind: &str) -> Option<String> {
    id_problem(text, kind)
}

/// A part of a single `b3` header: `{trace}-{span}[-{sampled}[-{parent}]]`, or just `0`, `1`, `d`.
pub fn b3_part(header: &str, part: &str) -> Option<String> {
    let header = header.trim();
    let fields: Vec<&str> = header.split('-').collect();
    let problem = || -> Option<String> {
        if fields.len() == 1 {
            return (!matches!(header, "0" | "1" | "d"))
                .then(|| format!("{header:?} is neither ids nor a sampling state (0, 1, d)"));
        }
        if fields.len() > 4 {
            return Some(format!("{} fields, expected at most 4 (trace-span-sampled-parent)", fields.len()));
        }
        if let Some(problem) = id_problem(fields[0], "trace") {
            return Some(format!("trace id: {problem}"));
        }
        if let Some(problem) = id_problem(fields[1], "span") {
            return Some(format!("span id: {problem}"));
        }
        if let Some(sampled) = fields.get(2)
            && !matches!(*sampled, "0" | "1" | "d")
        {
            return Some(format!("sampling state {sampled:?}, expected 0, 1 or d"));
        }
        if let Some(parent) = fields.get(3)
            && let Some(problem) = id_problem(parent, "span")
        {
            return Some(format!("parent span id: {problem}"));
        }
        None
    };
    match part {
        "problem" => problem(),
        "trace_id" if fields.len() >= 2 => Some(fields[0].to_owned()),
        "span_id" if fields.len() >= 2 => Some(fields[1].to_owned()),
        "sampled" if fields.len() == 1 => Some(fields[0].to_owned()),
        "sampled" => fields.get(2).map(|s| (*s).to_owned()),
        "parent_span_id" => fields.get(3).map(|s| (*s).to_owned()),
        _ => None,
    }
}

/// A part of a W3C `traceparent`: `{version}-{trace}-{parent}-{flags}`.
pub fn traceparent_part(header: &str, part: &str) -> Option<String> {
    let fields: Vec<&str> = header.trim().split('-').collect();
    let hex = |field: &str, digits: usize| {
        field.len() == digits && field.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let problem = || -> Option<String> {
        if fields.len() < 4 {
            return Some(format!("{} fields, expected 4 (version-trace-parent-flags)", fields.len()));
        }
        if !hex(fields[0], 2) || fields[0] == "ff" {
            return Some(format!("version {:?} is invalid", fields[0]));
        }
        if fields[0] == "00" && fields.len() != 4 {
            return Some(format!("{} fields, version 00 has exactly 4", fields.len()));
        }
        if !hex(fields[1], 32) {
            return Some(format!("trace id {:?} is not 32 lower-case hex digits", fields[1]));
        }
        if fields[1].bytes().all(|b| b == b'0') {
            return Some("trace id is all zero".into());
        }
        if !hex(fields[2], 16) {
            return Some(format!("parent id {:?} is not 16 lower-case hex digits", fields[2]));
        }
        if fields[2].bytes().all(|b| b == b'0') {
            return Some("parent id is all zero".into());
        }
        if !hex(fields[3], 2) {
            return Some(format!("flags {:?} are not 2 lower-case hex digits", fields[3]));
        }
        None
    };
    let field = |index: usize| fields.get(index).filter(|_| fields.len() >= 4).map(|s| (*s).to_owned());
    match part {
        "problem" => problem(),
        "version" => field(0),
        "trace_id" => field(1),
        "parent_id" => field(2),
        "flags" => field(3),
        _ => None,
    }
}

/// A function of two strings returning a string or null, applied row by row (null in, null out).
#[derive(Debug)]
struct TextFunction {
    name: &'static str,
    signature: Signature,
    function: fn(&str, &str) -> Option<String>,
}

impl TextFunction {
    fn new(name: &'static str, function: fn(&str, &str) -> Option<String>) -> TextFunction {
        TextFunction { name, signature: Signature::string(2, Volatility::Immutable), function }
    }
}

impl PartialEq for TextFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for TextFunction {}

impl std::hash::Hash for TextFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for TextFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        if args.args.len() != 2 {
            return exec_err!("{} takes two arguments", self.name);
        }
        let mut arrays = Vec::with_capacity(2);
        for argument in args.args {
            arrays.push(arrow::compute::cast(&argument.into_array(rows)?, &DataType::Utf8)?);
        }
        let (first, second) = (arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>());
        let mut out = StringBuilder::with_capacity(rows, rows * 8);
        for row in 0..rows {
            out.append_option(if first.is_valid(row) && second.is_valid(row) {
                (self.function)(first.value(row), second.value(row))
            } else {
                None
            });
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hex_id_of_every_id_type() {
        let context = SessionContext::new();
        register_udfs(&context);
        let sql = "SELECT hex_id(CAST(3 AS BIGINT UNSIGNED)), hex_id(X'00ff10'), \
                   hex_id(arrow_cast(X'0102030405060708090a0b0c0d0e0f10', 'FixedSizeBinary(16)')), \
                   hex_id(arrow_cast(X'', 'LargeBinary')), hex_id(CAST(NULL AS BIGINT UNSIGNED)) AS a, hex_id(NULL) AS b";
        let batches = context.sql(sql).await.unwrap().collect().await.unwrap();
        let row: Vec<Option<String>> = batches[0]
            .columns()
            .iter()
            .map(|column| {
                let text = column.as_string::<i32>();
                text.is_valid(0).then(|| text.value(0).to_owned())
            })
            .collect();
        assert_eq!(
            row,
            [
                Some("0000000000000003".to_owned()),
                Some("00ff10".to_owned()),
                Some("0102030405060708090a0b0c0d0e0f10".to_owned()),
                Some(String::new()),
                None,
                None
            ]
        );
    }

    #[tokio::test]
    async fn byte_length_counts_the_bytes_of_binary_ids() {
        let context = SessionContext::new();
        register_udfs(&context);
        let sql = "SELECT byte_length(X'00ff10'), byte_length(X''), \
                   byte_length(arrow_cast(X'0102030405060708', 'BinaryView')), byte_length(CAST(NULL AS BYTEA))";
        let batches = context.sql(sql).await.unwrap().collect().await.unwrap();
        let row: Vec<Option<i64>> = batches[0]
            .columns()
            .iter()
            .map(|column| {
                let lengths = column.as_primitive::<arrow::datatypes::Int64Type>();
                lengths.is_valid(0).then(|| lengths.value(0))
            })
            .collect();
        assert_eq!(row, [Some(3), Some(0), Some(8), None]);
    }

    #[test]
    fn b3_single_header_parts_and_problems() {
        let header = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90";
        assert_eq!(b3_part(header, "trace_id").as_deref(), Some("80f198ee56343ba864fe8b2a57d3eff7"));
        assert_eq!(b3_part(header, "span_id").as_deref(), Some("e457b5a2e4d86bd1"));
        assert_eq!(b3_part(header, "sampled").as_deref(), Some("1"));
        assert_eq!(b3_part(header, "parent_span_id").as_deref(), Some("05e3ac9a4f6e3b90"));
        assert_eq!(b3_part(header, "problem"), None);
        assert_eq!(b3_part("d", "sampled").as_deref(), Some("d"));
        assert_eq!(b3_part("d", "problem"), None);
        assert_eq!(b3_part("yes", "problem").as_deref(), Some("\"yes\" is neither ids nor a sampling state (0, 1, d)"));
        assert_eq!(b3_part("0000000000000000-e457b5a2e4d86bd1", "problem").as_deref(), Some("trace id: all zero"));
        assert_eq!(
            b3_part("80f198ee56343ba8-e457b5a2e4d86b", "problem").as_deref(),
            Some("span id: 14 hex digits, expected 16")
        );
        assert_eq!(
            b3_part("80f198ee56343ba8-e457b5a2e4d86bd1-x", "problem").as_deref(),
            Some("sampling state \"x\", expected 0, 1 or d")
        );
    }

    #[test]
    fn id_problems_name_what_is_wrong() {
        assert_eq!(id_problem("80f198ee56343ba8", "trace"), None);
        assert_eq!(id_problem("80f198ee56343ba8", "span"), None);
        assert_eq!(id_problem("80f198ee56343ba8a", "trace").as_deref(), Some("17 hex digits, expected 16 or 32"));
        assert_eq!(id_problem("zz", "span").as_deref(), Some("\"zz\" is not hex"));
        assert_eq!(id_problem("0000000000000000", "span").as_deref(), Some("all zero"));
        assert!(id_problem("80F198EE56343BA8", "span").unwrap().starts_with("upper-case"));
    }

    #[test]
    fn traceparent_parts_and_problems() {
        let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        assert_eq!(traceparent_part(header, "trace_id").as_deref(), Some("0af7651916cd43dd8448eb211c80319c"));
        assert_eq!(traceparent_part(header, "parent_id").as_deref(), Some("b7ad6b7169203331"));
        assert_eq!(traceparent_part(header, "flags").as_deref(), Some("01"));
        assert_eq!(traceparent_part(header, "problem"), None);
        let zero = "00-00000000000000000000000000000000-b7ad6b7169203331-01";
        assert_eq!(traceparent_part(zero, "problem").as_deref(), Some("trace id is all zero"));
        assert_eq!(
            traceparent_part("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "problem").as_deref(),
            Some("version \"ff\" is invalid")
        );
    }
}
