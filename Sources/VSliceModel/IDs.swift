import Foundation
import VSliceSupport

/// The ledger's IDs, each a type of its own around its string, and their formulas in this one place (see
/// docs/internals.md, "The ledger"): a task is a UUID; an event — one DAG node of a task — is `TASK_NODE`; a segment of an event is
/// `EVENT_ORDER` (the encode event's video segments `TASK_encode_ORDER`, the audio event's pieces
/// `TASK_audio_ORDER`); a trace — one attempt of one step — is a UUID. Each is stored in SQLite, and written in
/// JSON (`task.json`, trace records, `--json`), as its plain string.
public protocol LedgerIdentifier: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible
    where RawValue == String {
    init(rawValue: String)
}

extension LedgerIdentifier {
    public init(_ rawValue: String) { self.init(rawValue: rawValue) }
    public var description: String { rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    /// The first 8 characters: how messages and file names abbreviate the ID.
    public var short: String { String(rawValue.prefix(8)) }

    // As a plain string in JSON.
    public init(from decoder: any Swift.Decoder) throws { self.init(rawValue: try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: any Swift.Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// A task: a UUID (lowercase). A user's task argument (`vslice resume ID`) is one too, possibly abbreviated
/// (`JobStore.task(_:)` finds the task it starts).
public struct TaskID: LedgerIdentifier {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    package static func new() -> TaskID { TaskID(UUID().uuidString.lowercased()) }

    /// One DAG node of the task: `TASK_NODE`.
    public func event(_ node: Node) -> EventID { EventID(rawValue + "_" + node.rawValue) }
    /// Video segment `order`, a segment of the encode event: `TASK_encode_ORDER`.
    public func segment(_ order: Int) -> SegmentID { event(.encode).segment(order) }
    /// Audio piece `order`, a segment of the audio event: `TASK_audio_ORDER`.
    public func audioPiece(_ order: Int) -> SegmentID { event(.audio).segment(order) }
    /// Analysis element `order` (segment `order`'s analysis), a segment of the analyze event: `TASK_analyze_ORDER`.
    public func analysis(_ order: Int) -> SegmentID { event(.analyze).segment(order) }
    /// What every event ID of the task starts with (to find all of a task's traces).
    package var eventPrefix: String { rawValue + "_" }
}

/// One DAG node of a task: `TASK_NODE` (see `TaskID.event`).
public struct EventID: LedgerIdentifier {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// A segment of the event: `EVENT_ORDER`.
    public func segment(_ order: Int) -> SegmentID { SegmentID(rawValue + "_\(order)") }
    /// Whether this is the event of `node` (of whichever task).
    public func isNode(_ node: Node) -> Bool { rawValue.hasSuffix("_" + node.rawValue) }
}

/// A segment of an event — a video segment or an audio piece: `EVENT_ORDER` (see `TaskID.segment`, `audioPiece`).
public struct SegmentID: LedgerIdentifier {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// One attempt of one step: a UUID (lowercase), made by the process that runs the attempt.
public struct TraceID: LedgerIdentifier {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    package static func new() -> TraceID { TraceID(UUID().uuidString.lowercased()) }
}
