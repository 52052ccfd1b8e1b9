//! A barrier between a principal's SQL and the rows outside their scope.
//!
//! The scoped `events` view is a filter over the sealed table. Left alone, the optimizer merges the
//! query's own predicates with the scope's and pushes them all into the Parquet scan, where they may
//! be evaluated — in any order — on rows *outside* the scope. A predicate that can fail (`1 / (CASE WHEN
//! subject_id = 'X' THEN 0 ELSE 1 END) = 1`) would then answer, by failing or not, whether such a row
//! exists elsewhere. Above the scope's filter, the view holds this barrier: a logical node no
//! predicate, limit or projection is pushed through, planned as [`BarrierExec`], a pass-through
//! operator that takes no filter (static or dynamic) from above. The scope's filter stays below it,
//! in the scan and the lookup index; everything the query computes sees in-scope rows only.

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::DFSchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use std::fmt;
use std::sync::Arc;

/// The logical barrier over a scoped view's rows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct ScopeBarrier {
    /// The in-scope rows.
    pub input: LogicalPlan,
}

impl UserDefinedLogicalNodeCore for ScopeBarrier {
    fn name(&self) -> &str {
        "IrisScopeBarrier"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "IrisScopeBarrier")
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        let input = inputs.into_iter().next().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal("barrier without input".into())
        })?;
        Ok(ScopeBarrier { input })
    }
    // `prevent_predicate_push_down_columns` (all columns), `necessary_children_exprs` (none: all
    // columns) and `supports_limit_pushdown` (no) keep their defaults: nothing crosses.
}

/// The physical barrier: passes its input's batches through and accepts no filter from above.
#[derive(Debug)]
pub struct BarrierExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl BarrierExec {
    /// A barrier over `input`.
    pub fn new(input: Arc<dyn ExecutionPlan>) -> BarrierExec {
        let properties = input.properties().clone();
        BarrierExec { input, properties }
    }
}

impl DisplayAs for BarrierExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "IrisScopeBarrierExec")
    }
}

impl ExecutionPlan for BarrierExec {
    fn name(&self) -> &str {
        "IrisScopeBarrierExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.into_iter().next().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal("barrier without input".into())
        })?;
        Ok(Arc::new(BarrierExec::new(input)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

/// Plans [`ScopeBarrier`] as [`BarrierExec`].
#[derive(Debug)]
struct BarrierPlanner;

#[async_trait]
impl ExtensionPlanner for BarrierPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _state: &dyn Session,
        _planning: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        if node.as_any().downcast_ref::<ScopeBarrier>().is_none() {
            return Ok(None);
        }
        match physical_inputs.first() {
            Some(input) => Ok(Some(Arc::new(BarrierExec::new(input.clone())))),
            None => Ok(None),
        }
    }
}

/// DataFusion's planner, with the barrier.
#[derive(Debug)]
pub struct IrisQueryPlanner;

#[async_trait]
impl QueryPlanner for IrisQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(BarrierPlanner)])
            .create_physical_plan(logical_plan, session_state)
            .await
    }
}
