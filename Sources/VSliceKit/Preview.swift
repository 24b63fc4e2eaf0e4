import Foundation
import Logging
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// What `vslice plan` shows: the plan a transcode of the same request makes — the same checks before any work,
/// the same inspection of the source, the same planning path (`Plan.forRun`) — and how the audio is encoded.
public struct PlanPreview: Sendable {
    public var plan: Plan
    public var audio: [AudioTrackPlan]
    /// The `--vf` graph's measured timing.
    public var filterTiming: FilterTiming?
    /// What the check before any work timed of the `--process` program (whether or not the plan counts it).
    public var processorCost: ProcessorCost? = nil
}

extension Transcoder {
    /// How many of the source's first frames the `--process` program is run on before any work.
    public static var processorCheckFrames: Int { ProcessorCheck.frames }

    /// The plan this request's transcode would make, with nothing written: no task, no work folder. The output
    /// need not be given (its container then is MP4's).
    public func preview(stallTimeout: Double = RunOptions().stallTimeout) throws(VSliceError) -> PlanPreview {
        var hashed = self
        hashed.request.settings = try request.settings.withProcessorFiles()
        return try hashed.previewHashed(stallTimeout: stallTimeout)
    }

    private func previewHashed(stallTimeout: Double) throws(VSliceError) -> PlanPreview {
        try request.settings.validate()
        try request.executor.check(request: request, detach: false)
        let format = Container.format(forPath: request.output) ?? "mp4"
        try EncoderCheck.check(request.settings, format: format, output: nil)
        let input = Paths.absolute(request.input)
        let source = try inspect(input: input, format: format, stallTimeout: stallTimeout)
        let plan = try Plan.forRun(source: source, settings: request.settings, workers: request.executor.processPerElement)
        let audio = try AudioTrackPlan.describe(source: input, probe: source.probe, settings: request.settings)
        return PlanPreview(plan: plan, audio: audio, filterTiming: source.extras.filterTiming, processorCost: source.extras.processorCost)
    }
}
