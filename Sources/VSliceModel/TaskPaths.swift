import Foundation
import VSliceSupport

/// Where a task keeps its files beside (or away from) the output: the work folder `.NAME.vslice-ID8/` and the
/// merged part file `.NAME.vslice-ID8.part`. NAME is the output's file name, shortened (at a UTF-8 character
/// boundary) so that the whole name fits the filesystem's 255-byte limit: an output name that itself fits must
/// never make its sidecar names fail.
public enum TaskPaths {
    package static let nameMax = 255

    /// `.NAME.vslice-ID8` + `suffix`, at most 255 bytes.
    package static func sidecarName(output: String, taskId: TaskID, suffix: String = "") -> String {
        let name = (output as NSString).lastPathComponent
        let tail = ".vslice-\(taskId.short)\(suffix)"
        let room = nameMax - 1 - tail.utf8.count
        var kept = ""
        var used = 0
        for ch in name {
            let n = String(ch).utf8.count
            if used + n > room { break }
            kept.append(ch)
            used += n
        }
        return "." + kept + tail
    }

    /// The task's work folder: under `root` (`--work-dir`), else beside the output.
    public static func workDir(output: String, taskId: TaskID, root: String?) -> String {
        let dir = root ?? (output as NSString).deletingLastPathComponent
        return (dir as NSString).appendingPathComponent(sidecarName(output: output, taskId: taskId))
    }

    /// The merged file before it is published: beside the output (same filesystem, so publishing is a rename).
    public static func partFile(output: String, taskId: TaskID) -> String {
        ((output as NSString).deletingLastPathComponent as NSString)
            .appendingPathComponent(sidecarName(output: output, taskId: taskId, suffix: ".part"))
    }
}
