//! `linked_spans` for span files written before schema version 5, which lack the column: derived
//! from their `links` while the file is read.
//!
//! Since version 5, ingest writes each link's normalised ids and OpenTracing reference type a
//! second time, in `linked_spans` (three leaves), because the checks read only those of a link and
//! decoding `links` (fourteen leaves per span, attribute maps included) cost as much as every other
//! column they read. An older file gets the same values from its `links`, through the scan's
//! expression adapter: a scan of such a file that asks for `linked_spans` reads `links` instead
//! and builds the column from it. Files of version 5 are read as they are. A Ballista cluster's
//! executors read files without this adapter: there the span views take
//! `coalesce(linked_spans, linked_spans_of_links(links))`, which decodes `links` of every file.

use std::any::Any;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, StringBuilder, StructArray};
use arrow::datatypes::{DataType, Field, FieldRef, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};
use datafusion::physical_plan::PhysicalExpr;
use tracegap_ingest::span_schema::{REFERENCE_TYPE_KEY, column, linked_span_fields, linked_spans_type};

/// Creates the adapter of each span file: the default one, after `linked_spans` is replaced by
/// its derivation from `links` in a file that has `links` and not `linked_spans`.
#[derive(Debug, Default)]
pub struct LinkedSpansFromLinks;

impl PhysicalExprAdapterFactory for LinkedSpansFromLinks {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> Result<Arc<dyn PhysicalExprAdapter>> {
        let derive = physical_file_schema.index_of(column::LINKED_SPANS).is_err()
            && physical_file_schema.index_of(column::LINKS).is_ok();
        let default = DefaultPhysicalExprAdapterFactory.create(logical_file_schema, physical_file_schema.clone())?;
        Ok(Arc::new(LinkedSpansAdapter { default, physical_file_schema, derive }))
    }
}

#[derive(Debug)]
struct LinkedSpansAdapter {
    default: Arc<dyn PhysicalExprAdapter>,
    /// The file's own columns: `links` is read from them even where the scan's projection (the
    /// logical schema) leaves it out; the default adapter resolves such a column in the file.
    physical_file_schema: SchemaRef,
    /// The file lacks `linked_spans` and has `links`.
    derive: bool,
}

impl PhysicalExprAdapter for LinkedSpansAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
        if !self.derive {
            return self.default.rewrite(expr);
        }
        let derived = expr
            .transform(|expr| {
                let any = expr.as_ref() as &dyn Any;
                // The column, or the null that stands for it: DataFusion's Parquet opener replaces
                // a column that the file's statistics show all null (as they show a missing column)
                // by a null literal of its type before the adapter sees the expression.
                let is_linked_spans =
                    any.downcast_ref::<Column>().is_some_and(|column| column.name() == column::LINKED_SPANS)
                        || any.downcast_ref::<Literal>().is_some_and(|literal| {
                            literal.value().is_null() && literal.value().data_type() == linked_spans_type()
                        });
                if !is_linked_spans {
                    return Ok(Transformed::no(expr));
                }
                let links = Column::new(column::LINKS, self.physical_file_schema.index_of(column::LINKS)?);
                let function = ScalarFunctionExpr::try_new(
                    Arc::new(ScalarUDF::from(LinkedSpansOfLinks::default())),
                    vec![Arc::new(links)],
                    &self.physical_file_schema,
                    Arc::new(ConfigOptions::default()),
                )?;
                Ok(Transformed::yes(Arc::new(function) as Arc<dyn PhysicalExpr>))
            })
            .data()?;
        self.default.rewrite(derived)
    }
}

/// `linked_spans_of_links(links)`: each link's `trace_id`, `span_id` and the string of its
/// `opentracing.ref_type` attribute, as ingest writes `linked_spans`. Built by the adapter above,
/// and registered as a helper function for a cluster's sessions, whose executors read the files
/// without that adapter (`Analysis` derives the column in SQL there).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LinkedSpansOfLinks {
    signature: Signature,
}

impl Default for LinkedSpansOfLinks {
    fn default() -> Self {
        LinkedSpansOfLinks { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for LinkedSpansOfLinks {
    fn name(&self) -> &str {
        "linked_spans_of_links"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arguments: &[DataType]) -> Result<DataType> {
        Ok(linked_spans_type())
    }

    fn return_field_from_args(&self, _arguments: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(column::LINKED_SPANS, linked_spans_type(), true)))
    }

    fn invoke_with_args(&self, arguments: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let links = arguments.args[0].to_array(arguments.number_rows)?;
        Ok(ColumnarValue::Array(linked_spans_of(&links)?))
    }
}

/// The `linked_spans` of a `links` column.
fn linked_spans_of(links: &ArrayRef) -> Result<ArrayRef> {
    let Some(links) = links.as_list_opt::<i32>() else {
        return exec_err!("linked_spans_of_links: `links` is {}, not a list", links.data_type());
    };
    let Some(items) = links.values().as_struct_opt() else {
        return exec_err!("linked_spans_of_links: a link is {}, not a struct", links.values().data_type());
    };
    let field = |name: &str| match items.column_by_name(name) {
        Some(column) => Ok(column.clone()),
        None => exec_err!("linked_spans_of_links: a link has no `{name}`"),
    };
    let (trace_id, span_id, attributes) = (field("trace_id")?, field("span_id")?, field("attributes")?);
    let Some(attributes) = attributes.as_map_opt() else {
        return exec_err!("linked_spans_of_links: a link's attributes are {}, not a map", attributes.data_type());
    };
    let (Some(keys), Some(values)) = (attributes.keys().as_string_opt::<i32>(), attributes.values().as_struct_opt())
    else {
        return exec_err!("linked_spans_of_links: a link's attributes are not text keys to struct values");
    };
    let strings = values.column_by_name("string").and_then(|strings| strings.as_string_opt::<i32>());
    let offsets = attributes.value_offsets();
    let mut reference_types = StringBuilder::with_capacity(items.len(), 0);
    for item in 0..items.len() {
        // The first entry of the key, as a map lookup finds it; its text when the value is a string.
        let entries = offsets[item] as usize..offsets[item + 1] as usize;
        let entry = if attributes.is_null(item) {
            None
        } else {
            entries.into_iter().find(|&entry| keys.value(entry) == REFERENCE_TYPE_KEY)
        };
        let text = entry.and_then(|entry| {
            let strings = strings?;
            (!values.is_null(entry) && !strings.is_null(entry)).then(|| strings.value(entry))
        });
        reference_types.append_option(text);
    }
    let linked = StructArray::try_new(
        linked_span_fields(),
        vec![trace_id, span_id, Arc::new(reference_types.finish())],
        items.nulls().cloned(),
    )?;
    let item_field = match linked_spans_type() {
        DataType::List(field) => field,
        other => return exec_err!("linked_spans_of_links: linked spans are {other}, not a list"),
    };
    Ok(Arc::new(ListArray::try_new(item_field, links.offsets().clone(), Arc::new(linked), links.nulls().cloned())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linked_spans_are_the_links_ids_and_reference_types() {
        let batch = crate::test_spans::span_batch(
            r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cart"}}]},
            "scopeSpans":[{"spans":[
              {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"00000000000000a1","name":"a","kind":2,
               "startTimeUnixNano":"1","endTimeUnixNano":"2","links":[
                 {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"00000000000000b1",
                  "attributes":[{"key":"x","value":{"intValue":"1"}},{"key":"opentracing.ref_type","value":{"stringValue":"child_of"}}]},
                 {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"00000000000000b2",
                  "attributes":[{"key":"opentracing.ref_type","value":{"intValue":"3"}}]}]},
              {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"00000000000000a2","name":"b","kind":2,
               "startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#
                .to_owned(),
        );
        let written = batch.column_by_name(column::LINKED_SPANS).expect("written by ingest").clone();
        let derived = linked_spans_of(batch.column_by_name(column::LINKS).expect("links")).expect("derived");
        assert_eq!(derived.as_ref(), written.as_ref(), "derived from links as ingest writes them");
        let derived = derived.as_list::<i32>();
        assert_eq!(derived.value_offsets(), &[0, 2, 2]);
        let items = derived.values().as_struct();
        let types = items.column_by_name("ref_type").unwrap().as_string::<i32>();
        assert_eq!((types.value(0), types.is_null(1)), ("child_of", true), "only a string names the type");
        let spans = items.column_by_name("span_id").unwrap().as_primitive::<arrow::datatypes::UInt64Type>();
        assert_eq!((spans.value(0), spans.value(1)), (0xb1, 0xb2));
    }
}
