import Foundation
import VSliceSupport

/// A node of the transcode DAG: its name is the ledger's (`event` rows are `TASK_name`). A new stage's file
/// declares its own (`extension Node { static let thumbnails = Node("thumbnails") }`).
public struct Node: RawRepresentable, Hashable, Codable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    package init(_ name: String) { rawValue = name }
    public var description: String { rawValue }

    public static let probe = Node("probe"), plan = Node("plan"), audio = Node("audio"), encode = Node("encode"),
                      mux = Node("mux"), verify = Node("verify"), publish = Node("publish"),
                      analyze = Node("analyze"), reduce = Node("reduce")
}
