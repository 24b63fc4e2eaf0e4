import Foundation

/// The ledger's IDs, their formulas in this one place (the design notes' "IDs"): a task is a UUID; an event —
/// one DAG node of a task — is `TASK_NODE`; a segment of an event is `EVENT_ORDER` (the encode event's video
/// segments `TASK_encode_ORDER`, the audio event's pieces `TASK_audio_ORDER`); a trace — one attempt of one
/// step — is a UUID.
public enum LedgerID {
    public static func newTask() -> String { UUID().uuidString.lowercased() }
    public static func newTrace() -> String { UUID().uuidString.lowercased() }
    public static func event(_ task: String, _ node: Node) -> String { task + "_" + node.rawValue }
    public static func segment(_ task: String, _ order: Int) -> String { segment(task, .encode, order) }
    /// A segment of any event: `TASK_NODE_ORDER`.
    public static func segment(_ task: String, _ node: Node, _ order: Int) -> String { event(task, node) + "_\(order)" }
    /// An audio piece (a segment of the audio event).
    public static func audioPiece(_ task: String, _ order: Int) -> String { segment(task, .audio, order) }
    /// What every event ID of a task starts with (to find all of a task's traces).
    public static func eventPrefix(_ task: String) -> String { task + "_" }
}
