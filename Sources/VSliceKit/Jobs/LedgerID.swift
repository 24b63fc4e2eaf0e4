import Foundation

/// The ledger's IDs, their formulas in this one place (the design notes' "IDs"): a task is a UUID; an event —
/// one DAG node of a task — is `TASK_NODE`; a segment of the encode event is `TASK_encode_ORDER`; a trace — one
/// attempt of one step — is a UUID.
public enum LedgerID {
    public static func newTask() -> String { UUID().uuidString.lowercased() }
    public static func newTrace() -> String { UUID().uuidString.lowercased() }
    public static func event(_ task: String, _ node: Node) -> String { task + "_" + node.rawValue }
    public static func segment(_ task: String, _ order: Int) -> String { event(task, .encode) + "_\(order)" }
    /// What every event ID of a task starts with (to find all of a task's traces).
    public static func eventPrefix(_ task: String) -> String { task + "_" }
}
