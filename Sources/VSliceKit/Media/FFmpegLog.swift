import CFFmpeg

/// How much of FFmpeg's own logging reaches stderr. vslice reports failures itself, in one line,
/// so the default is silence; `--verbose` turns FFmpeg's warnings back on.
public enum FFmpegLog {
    public enum Level: Sendable { case quiet, error, warning, info, debug }

    public static func set(_ level: Level) {
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
