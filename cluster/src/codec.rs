//! The logical plan codec of tracegap's cluster: Ballista's own, plus in-memory tables.
//!
//! An analysis registers in-memory tables (`findings`, the views marked `-- materialize`, an
//! empty span table). Stock codecs cannot send them to the scheduler; this one writes their
//! batches into the plan as an Arrow IPC stream. Plans stay small because these tables are small
//! next to the spans they summarise.

use std::io::Cursor;
use std::sync::Arc;

use ballista_core::serde::BallistaLogicalExtensionCodec;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result, TableReference};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion_proto::logical_plan::LogicalExtensionCodec;

/// Marks an encoded in-memory table, so anything else goes to Ballista's codec.
const MEMORY_TABLE_TAG: &[u8] = b"tracegap-memtable-ipc\0";

/// Ballista's logical codec with in-memory tables added.
#[derive(Debug, Default)]
pub struct TracegapLogicalCodec {
    ballista: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for TracegapLogicalCodec {
    fn try_decode(&self, buf: &[u8], inputs: &[LogicalPlan], ctx: &TaskContext) -> Result<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match buf.strip_prefix(MEMORY_TABLE_TAG) {
            Some(stream) => decode_memory_table(stream, table_ref, schema),
            None => self.ballista.try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match node.downcast_ref::<MemTable>() {
            Some(table) => encode_memory_table(table, table_ref, buf),
            None => self.ballista.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(&self, buf: &[u8], ctx: &TaskContext) -> Result<Arc<dyn FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(&self, buf: &mut Vec<u8>, node: Arc<dyn FileFormatFactory>) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.ballista.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.ballista.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.ballista.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udwf(node, buf)
    }
}

fn encode_memory_table(table: &MemTable, table_ref: &TableReference, buf: &mut Vec<u8>) -> Result<()> {
    let failed = |what: &str, error: &dyn std::fmt::Display| {
        DataFusionError::Internal(format!("encoding in-memory table {table_ref}: {what}: {error}"))
    };
    buf.extend_from_slice(MEMORY_TABLE_TAG);
    let mut writer = StreamWriter::try_new(&mut *buf, &table.schema()).map_err(|e| failed("schema", &e))?;
    for partition in &table.batches {
        // Nothing writes to these tables once registered; a held lock would be a bug upstream.
        let batches = partition.try_read().map_err(|e| failed("partition locked", &e))?;
        for batch in batches.iter() {
            writer.write(batch).map_err(|e| failed("batch", &e))?;
        }
    }
    writer.finish().map_err(|e| failed("end of stream", &e))?;
    Ok(())
}

fn decode_memory_table(stream: &[u8], table_ref: &TableReference, schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
    let failed = |error: &dyn std::fmt::Display| {
        DataFusionError::Internal(format!("decoding in-memory table {table_ref}: {error}"))
    };
    let reader = StreamReader::try_new(Cursor::new(stream), None).map_err(|e| failed(&e))?;
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| failed(&e))?;
    Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::prelude::SessionContext;

    use super::*;

    #[tokio::test]
    async fn an_in_memory_table_survives_the_round_trip() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("check", DataType::Utf8, false),
            Field::new("time_nano", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["orphaned_span", "broken_b3"])),
                Arc::new(Int64Array::from(vec![Some(1), None])),
            ],
        )
        .unwrap();
        let table = Arc::new(MemTable::try_new(schema.clone(), vec![vec![batch.clone()], vec![batch]]).unwrap());
        let codec = TracegapLogicalCodec::default();
        let mut buf = Vec::new();
        codec.try_encode_table_provider(&TableReference::bare("findings"), table, &mut buf).unwrap();
        let context = SessionContext::new();
        let decoded = codec
            .try_decode_table_provider(&buf, &TableReference::bare("findings"), schema, &context.task_ctx())
            .unwrap();
        context.register_table("findings", decoded).unwrap();
        let rows =
            context.sql("SELECT count(*), count(time_nano) FROM findings").await.unwrap().collect().await.unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&rows).unwrap().to_string();
        assert!(text.contains("| 4        | 2"), "{text}");
    }

    #[test]
    fn a_corrupt_table_is_an_error_not_a_panic() {
        let codec = TracegapLogicalCodec::default();
        let mut buf = MEMORY_TABLE_TAG.to_vec();
        buf.extend_from_slice(b"not arrow");
        let schema = Arc::new(Schema::empty());
        let error = codec
            .try_decode_table_provider(
                &buf,
                &TableReference::bare("findings"),
                schema,
                &SessionContext::new().task_ctx(),
            )
            .unwrap_err();
        assert!(error.to_string().contains("decoding in-memory table findings"), "{error}");
    }
}
