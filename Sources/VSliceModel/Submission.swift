import Foundation
import VSliceSupport

/// What was submitted for a task (kept in the work folder as `submissions.json`, for attempts and `cancel`).
package struct Submission: Codable, Sendable {
    package var engine: String
    package var id: String
    package var indices: [Int]
    package var submittedAt: Double

    package static let fileName = "submissions.json"

    package static func load(workDir: String) -> [Submission] {
        let path = (workDir as NSString).appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return (try? JSONDecoder().decode([Submission].self, from: data)) ?? []
    }

    package static func save(_ all: [Submission], workDir: String) throws(VSliceError) {
        let data: Data
        do { data = try JSONEncoder().encode(all) } catch {
            throw VSliceError(.processing, "write submissions", path: workDir, reason: plainReason(error))
        }
        try WorkFolder.writeAtomically(data, to: (workDir as NSString).appendingPathComponent(fileName))
    }

    package init(engine: String, id: String, indices: [Int], submittedAt: Double) {
        self.engine = engine
        self.id = id
        self.indices = indices
        self.submittedAt = submittedAt
    }
}

