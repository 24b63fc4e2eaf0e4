import Foundation
import VSliceSupport

/// A task's status, stored as its raw string.
public enum TaskStatus: String, Codable, Sendable, CaseIterable {
    /// Held by a process, or released to a scheduler (`--detach`), or left by one that died.
    case running
    case done
    case failed
    case interrupted
    case cancelled

    /// What a resume takes up again.
    public static let resumable: Set<TaskStatus> = [.running, .interrupted, .failed]
    public var isResumable: Bool { Self.resumable.contains(self) }
    /// `resumable` as an SQL list: `('running','interrupted','failed')`.
    package static var resumableSQL: String { "(" + resumable.map { "'\($0.rawValue)'" }.sorted().joined(separator: ",") + ")" }
}

/// The status of an event (one DAG node of a task) or of a trace (one attempt of a step), stored as its raw string.
public enum StepStatus: String, Codable, Sendable, CaseIterable {
    case pending
    case running
    case done
    case failed
    case cancelled
    /// A trace whose process died or lost the task (found `running` by the next holder).
    case abandoned
}

/// A segment's status (a video segment or an audio piece), stored as its raw string.
public enum SegmentStatus: String, Codable, Sendable, CaseIterable {
    case pending
    case running
    case done
    case failed
}
