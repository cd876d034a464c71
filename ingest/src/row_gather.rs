//! Gathering rows of a span batch in a new order (the sort before a Parquet write), fast for the
//! nested attribute, event and link columns.
//!
//! arrow's `take` copies a list row by row through `MutableArrayData`, which for a list of
//! structs of structs (an attribute map) costs more than encoding the rows as Parquet. Here a
//! list or map is gathered by turning its offsets into the indices of its child rows and
//! gathering the children once with those indices: every leaf is then a single flat gather. The
//! columns of a batch are gathered in parallel. Measured on the import benchmark: see
//! `docs/benchmarks.md`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, GenericListArray, MapArray, OffsetSizeTrait, RecordBatch, StructArray, UInt32Array,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use rayon::prelude::*;

/// The rows of `batch` at `indices`, in that order (indices must be valid rows, without nulls).
pub fn gather_batch(batch: &RecordBatch, indices: &UInt32Array) -> Result<RecordBatch, ArrowError> {
    let columns =
        batch.columns().par_iter().map(|column| gather(column.as_ref(), indices)).collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(batch.schema(), columns)
}

/// The rows of `array` at `indices`, in that order.
pub fn gather(array: &dyn Array, indices: &UInt32Array) -> Result<ArrayRef, ArrowError> {
    if indices.null_count() > 0 {
        return arrow::compute::take(array, indices, None);
    }
    match array.data_type() {
        DataType::List(_) => gather_list(array.as_list::<i32>(), indices),
        DataType::LargeList(_) => gather_list(array.as_list::<i64>(), indices),
        DataType::Map(..) => gather_map(array.as_map(), indices),
        DataType::Struct(_) => Ok(Arc::new(gather_struct(array.as_struct(), indices)?)),
        _ => arrow::compute::take(array, indices, None),
    }
}

fn gather_nulls(nulls: Option<&NullBuffer>, indices: &UInt32Array) -> Option<NullBuffer> {
    let nulls = nulls.filter(|n| n.null_count() > 0)?;
    let rows = indices.values();
    Some(NullBuffer::new(BooleanBuffer::collect_bool(rows.len(), |i| nulls.is_valid(rows[i] as usize))))
}

/// New offsets for the gathered rows, and the indices of their child rows.
fn gather_offsets<O: OffsetSizeTrait>(
    offsets: &OffsetBuffer<O>,
    indices: &UInt32Array,
) -> Result<(OffsetBuffer<O>, UInt32Array), ArrowError> {
    let too_many = || ArrowError::ComputeError("gathered list has more than 2^32 child rows".into());
    let mut new_offsets = Vec::with_capacity(indices.len() + 1);
    new_offsets.push(O::usize_as(0));
    let mut children: Vec<u32> = Vec::new();
    for &row in indices.values() {
        let start = offsets[row as usize].as_usize();
        let end = offsets[row as usize + 1].as_usize();
        let start = u32::try_from(start).map_err(|_| too_many())?;
        let end = u32::try_from(end).map_err(|_| too_many())?;
        children.extend(start..end);
        new_offsets.push(O::from_usize(children.len()).ok_or_else(too_many)?);
    }
    Ok((OffsetBuffer::new(ScalarBuffer::from(new_offsets)), UInt32Array::from(children)))
}

fn gather_list<O: OffsetSizeTrait>(list: &GenericListArray<O>, indices: &UInt32Array) -> Result<ArrayRef, ArrowError> {
    let (offsets, children) = gather_offsets(list.offsets(), indices)?;
    let values = gather(list.values().as_ref(), &children)?;
    let field = match list.data_type() {
        DataType::List(field) | DataType::LargeList(field) => field.clone(),
        other => return Err(ArrowError::InvalidArgumentError(format!("not a list: {other}"))),
    };
    let nulls = gather_nulls(list.nulls(), indices);
    Ok(Arc::new(GenericListArray::<O>::try_new(field, offsets, values, nulls)?))
}

fn gather_map(map: &MapArray, indices: &UInt32Array) -> Result<ArrayRef, ArrowError> {
    let (offsets, children) = gather_offsets(map.offsets(), indices)?;
    let entries = gather_struct(map.entries(), &children)?;
    let (field, ordered) = match map.data_type() {
        DataType::Map(field, ordered) => (field.clone(), *ordered),
        other => return Err(ArrowError::InvalidArgumentError(format!("not a map: {other}"))),
    };
    let nulls = gather_nulls(map.nulls(), indices);
    Ok(Arc::new(MapArray::try_new(field, offsets, entries, nulls, ordered)?))
}

fn gather_struct(structure: &StructArray, indices: &UInt32Array) -> Result<StructArray, ArrowError> {
    let columns =
        structure.columns().iter().map(|column| gather(column.as_ref(), indices)).collect::<Result<Vec<_>, _>>()?;
    let nulls = gather_nulls(structure.nulls(), indices);
    StructArray::try_new_with_length(structure.fields().clone(), columns, nulls, indices.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span_batch::{BatchContext, build_span_batch};
    use crate::{GtsKeys, Source};

    /// Spans with attributes of every type, events with attributes, links, and one span with none.
    fn nested_spans() -> RecordBatch {
        let mut spans = Vec::new();
        for index in 0..9u32 {
            let attributes = if index % 4 == 3 {
                String::new()
            } else {
                format!(
                    r#""attributes": [
                        {{"key": "s", "value": {{"stringValue": "v{index}"}}}},
                        {{"key": "i", "value": {{"intValue": "{index}"}}}},
                        {{"key": "d", "value": {{"doubleValue": 1.5}}}},
                        {{"key": "b", "value": {{"boolValue": true}}}},
                        {{"key": "a", "value": {{"arrayValue": {{"values": [{{"stringValue": "x"}}]}}}}}}
                    ],"#
                )
            };
            let events = if index % 3 == 0 {
                format!(
                    r#""events": [{{"timeUnixNano": "{index}", "name": "e", "attributes": [{{"key": "k", "value": {{"intValue": 7}}}}]}},
                                  {{"timeUnixNano": "2", "name": "f"}}],"#
                )
            } else {
                String::new()
            };
            let links = if index % 2 == 1 {
                r#""links": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "attributes": [{"key": "l", "value": {"stringValue": "x"}}]}],"#
            } else {
                ""
            };
            spans.push(format!(
                r#"{{"traceId": "{:032x}", "spanId": "{:016x}", "name": "span {index}", "kind": 2,
                    {attributes} {events} {links}
                    "startTimeUnixNano": "{}", "endTimeUnixNano": "{}"}}"#,
                index % 3 + 1,
                index + 1,
                1_000 + index,
                2_000 + index
            ));
        }
        let json = format!(
            r#"{{"resourceSpans": [{{"resource": {{"attributes": [{{"key": "service.name", "value": {{"stringValue": "a"}}}}]}},
                "scopeSpans": [{{"scope": {{"name": "s"}}, "spans": [{}]}}]}}]}}"#,
            spans.join(",")
        );
        let request = crate::otlp_json::decode_json_request(&bytes::Bytes::from(json)).unwrap().request;
        let context =
            BatchContext { receive_time_nano: 1, source: Source::Import, gts_keys: Arc::new(GtsKeys::default()) };
        build_span_batch(&request, &context).unwrap().batch.unwrap()
    }

    /// The gathered batch equals what arrow's own `take` gives, column by column, on spans with
    /// attributes, events and links, for a reversed, a shuffled and a partial order.
    #[test]
    fn gathering_equals_arrow_take_on_nested_span_columns() {
        let batch = nested_spans();
        let rows = batch.num_rows() as u32;
        assert!(rows >= 4, "the sample has {rows} spans");
        let orders: Vec<Vec<u32>> = vec![
            (0..rows).rev().collect(),
            (0..rows).map(|i| (i * 7 + 3) % rows).collect(),
            vec![rows - 1, 0, 0, rows / 2],
        ];
        for order in orders {
            let indices = UInt32Array::from(order.clone());
            let gathered = gather_batch(&batch, &indices).unwrap();
            let expected = arrow::compute::take_record_batch(&batch, &indices).unwrap();
            assert_eq!(gathered.schema(), expected.schema());
            for (index, (got, want)) in gathered.columns().iter().zip(expected.columns()).enumerate() {
                assert_eq!(got.to_data(), want.to_data(), "column {} in order {order:?}", batch.schema().field(index));
            }
        }
    }

    /// Sliced lists (offsets not starting at zero) and null rows are gathered right.
    #[test]
    fn gathering_handles_sliced_lists_and_null_rows() {
        use arrow::array::{Int64Array, ListArray};
        use arrow::datatypes::Int64Type;
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            None,
            Some(vec![]),
            Some(vec![Some(3), None, Some(5)]),
            Some(vec![Some(6)]),
        ]);
        let sliced = list.slice(1, 4);
        let indices = UInt32Array::from(vec![2, 0, 3, 1, 2]);
        let gathered = gather(&sliced, &indices).unwrap();
        let expected = arrow::compute::take(&sliced, &indices, None).unwrap();
        assert_eq!(gathered.as_list::<i32>(), expected.as_list::<i32>());
        let values: Vec<Option<Vec<Option<i64>>>> = gathered
            .as_list::<i32>()
            .iter()
            .map(|row| row.map(|r| r.as_any().downcast_ref::<Int64Array>().unwrap().iter().collect()))
            .collect();
        assert_eq!(
            values,
            vec![
                Some(vec![Some(3), None, Some(5)]),
                None,
                Some(vec![Some(6)]),
                Some(vec![]),
                Some(vec![Some(3), None, Some(5)])
            ]
        );
    }
}
