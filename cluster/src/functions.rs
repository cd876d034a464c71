//! The function registry of every cluster process: Ballista's defaults plus the checks' helper
//! functions (`hex_id`, `id_problem`, `b3_part`, `traceparent_part`, `linked_spans_of_links`).

use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::ScalarUDF;

/// The checks' helper functions, shared.
pub fn helper_functions() -> Vec<Arc<ScalarUDF>> {
    tracegap_analyze::udfs::helper_functions().into_iter().map(Arc::new).collect()
}

/// Every function of a local DataFusion session (Ballista's own defaults leave out the nested
/// ones the checks use, such as `cardinality` and `generate_series`) with the helper functions
/// added: what executors decode plans with.
pub fn function_registry() -> BallistaFunctionRegistry {
    let local = SessionStateBuilder::new().with_default_features().build();
    let mut registry = BallistaFunctionRegistry::from(&local);
    for function in helper_functions() {
        registry.scalar_functions.insert(function.name().to_owned(), function);
    }
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_holds_every_helper_function_and_the_defaults() {
        let registry = function_registry();
        for name in
            ["hex_id", "id_problem", "b3_part", "traceparent_part", "linked_spans_of_links", "coalesce", "to_char"]
        {
            assert!(registry.scalar_functions.contains_key(name), "{name} missing");
        }
    }

    #[test]
    fn registry_holds_every_function_of_a_local_session() {
        let registry = function_registry();
        let local = SessionStateBuilder::new().with_default_features().build();
        for name in local.scalar_functions().keys() {
            assert!(registry.scalar_functions.contains_key(name), "scalar function {name} missing");
        }
        for name in local.aggregate_functions().keys() {
            assert!(registry.aggregate_functions.contains_key(name), "aggregate function {name} missing");
        }
        for name in ["cardinality", "generate_series", "array_agg", "row_number"] {
            let known = registry.scalar_functions.contains_key(name)
                || registry.aggregate_functions.contains_key(name)
                || registry.window_functions.contains_key(name);
            assert!(known, "{name} missing");
        }
    }
}
