import ArgumentParser
import Foundation
import VSliceKit

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Describe a media file: streams, exact frame count, keyframes, frame-rate mode.",
        discussion: """
            EXAMPLES:
              vslice probe in.mp4
              vslice probe --json in.mp4 | jq '.streams[] | {codec_type, codec_name, tags}'
            """)

    @Argument(help: "The media file to probe.")
    var input: String

    @Flag(help: "Print JSON: ffprobe's key names (codec_name, pix_fmt, r_frame_rate, format_name…), plus frame_count, keyframes, variable_frame_rate, open_gop.")
    var json = false

    func run() throws {
        let probe = try Probe.read(input)
        if json {
            try Terminal.printJSON(probe.report)
        } else {
            print(ProbeText.render(probe.report))
        }
    }
}

enum ProbeText {
    static func render(_ r: ProbeReport) -> String {
        func secs(_ d: Double?) -> String { d.map { String(format: "%.3f s", $0) } ?? "n/a" }
        var lines = ["\(r.path)",
                     "  container: \(r.format) (\(r.formatLongName))",
                     "  duration:  \(secs(r.duration)), start \(secs(r.startTime))"
                        + (r.bitRate.map { ", \($0 / 1000) kb/s" } ?? "")]
        for s in r.streams {
            var line = "  #\(s.index) \(s.type): \(s.codec)"
            if let p = s.profile { line += " (\(p))" }
            if s.type == "video" {
                line += ", \(s.width ?? 0)x\(s.height ?? 0) \(s.pixelFormat ?? "?")"
                if let f = s.avgFrameRate { line += String(format: ", %.3f fps avg", f.value) }
                line += ", colour \(s.colorPrimaries ?? "?")/\(s.colorTransfer ?? "?")/\(s.colorSpace ?? "?")/\(s.colorRange ?? "?")"
                if let rot = s.rotation { line += ", rotation \(rot)°" }
            } else if s.type == "audio" {
                line += ", \(s.sampleRate ?? 0) Hz \(s.sampleFormat ?? "?") \(s.channelLayout ?? "?") (\(s.channels ?? 0) ch)"
            }
            line += ", time base \(s.timeBase), start \(secs(s.startTime))"
            if let l = s.language { line += ", language \(l)" }
            if s.disposition?["default"] == 1 { line += ", default" }
            lines.append(line)
        }
        if let n = r.frameCount {
            lines.append("  frames:    \(n) (\(r.variableFrameRate == true ? "variable" : "constant") frame rate, "
                         + "\(r.openGop == true ? "open" : "closed") GOPs)")
        }
        if let k = r.keyframes {
            let shown = k.prefix(12).map { String(format: "%d@%.3fs", $0.index, $0.time) }.joined(separator: " ")
            lines.append("  keyframes: \(k.count): \(shown)\(k.count > 12 ? " …" : "")")
        }
        return lines.joined(separator: "\n")
    }
}
