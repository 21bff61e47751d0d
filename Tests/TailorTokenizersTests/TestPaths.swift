import Foundation
@_exported import TailorTestSupport

extension TestPaths {
    static func fixture(_ name: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureURL(Bundle.module, name)))
    }
}
