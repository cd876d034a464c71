//! User SQL (`tracegap sql`, the dashboard's SQL box): queries only. DDL, DML, COPY and
//! statements such as SET are refused before anything runs, and there is no way to read files
//! other than the span table (URL tables are not enabled).

use arrow::array::RecordBatch;
use datafusion::execution::context::SQLOptions;
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::AnalyzeError;
use crate::session::Analysis;

/// Runs a read-only query; at most `max_rows` rows are returned.
pub async fn query_read_only(
    analysis: &Analysis,
    sql: &str,
    max_rows: usize,
) -> Result<Vec<RecordBatch>, AnalyzeError> {
    // First by the statement's kind, whatever else is wrong with it; then by the plan.
    let statements = DFParser::parse_sql(sql)?;
    let only_queries = statements.len() == 1
        && statements.iter().all(
            |statement| matches!(statement, DFStatement::Statement(inner) if matches!(**inner, SqlStatement::Query(_))),
        );
    if !only_queries {
        return Err(AnalyzeError::Refused(
            "refused: only queries are allowed (one SELECT; no DDL, DML, COPY or SET)".into(),
        ));
    }
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let frame = analysis.context().sql_with_options(sql, options).await.map_err(|error| {
        let message = error.to_string();
        if message.contains("not supported") {
            AnalyzeError::Refused(format!(
                "refused: only queries are allowed (no DDL, DML, COPY or SET): {}",
                message.lines().next().unwrap_or_default()
            ))
        } else {
            AnalyzeError::DataFusion(error)
        }
    })?;
    Ok(frame.limit(0, Some(max_rows))?.collect().await?)
}
