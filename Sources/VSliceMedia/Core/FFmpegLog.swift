import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// How much of FFmpeg's own logging reaches stderr. vslice reports failures itself, in one line,
/// so the default is silence; `--verbose` turns FFmpeg's warnings back on.
public enum FFmpegLog {
    public enum Level: Sendable { case quiet, error, warning, info, debug }

    public static func set(_ level: Level) {
        // SVT-AV1 prints its banner once per encoder unless told otherwise, and reads this variable when an
        // encoder opens, on a worker thread: set here, at start-up, before any thread can read the environment.
        setenv("SVT_LOG", level == .quiet ? "1" : "2", 0)
        let v: Int32 = switch level {
        case .quiet: AV_LOG_QUIET
        case .error: AV_LOG_ERROR
        case .warning: AV_LOG_WARNING
        case .info: AV_LOG_INFO
        case .debug: AV_LOG_DEBUG
        }
        av_log_set_level(v)
    }
}
