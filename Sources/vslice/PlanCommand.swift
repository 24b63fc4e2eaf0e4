import ArgumentParser
import Foundation
import VSliceKit

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Print the segments a transcode would make (a dry run: nothing is encoded).")

    @Argument(help: "The input media file.")
    var input: String

    @OptionGroup var options: TranscodeOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let settings = try options.settings()
        let probe = try Probe(path: input)
        let plan = try Plan.make(source: input, index: probe.video!, settings: settings)
        if json {
            try Terminal.printJSON(plan)
            return
        }
        let tb = plan.timeBase.value
        print("\(input): \(plan.frameCount) frames, \(plan.segments.count) segments (time base \(plan.timeBase))")
        print("  why: \(plan.reason)")
        print("  seg  decode-from  buffer-start  first  last  buffer-end  frames      start s       end s")
        for s in plan.segments {
            print(String(format: "%5d  %11d  %12d  %5d  %4d  %10d  %6d  %11.3f  %10.3f", s.index, s.decodeFrom,
                         s.bufferStart, s.firstFrame, s.lastFrame, s.bufferEnd, s.frameCount,
                         Double(s.startPts) * tb, Double(s.endPts) * tb))
        }
    }
}
